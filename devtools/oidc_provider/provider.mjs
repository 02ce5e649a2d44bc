// A real OpenID Connect provider (oidc-provider) for Gatehouse's tests and development.
//
// Usage: node provider.mjs CONFIG.json
//
// The config holds `issuer`, `port`, optional `tls` {cert, key} (PEM paths; HTTPS when given),
// `clients` [{client_id, client_secret, redirect_uris, application_type?,
// token_endpoint_auth_method?}], `users` [{sub, username, password, name, email, groups}] and
// `jwks` (the private signing keys). State lives in memory: a restart forgets every session,
// code and token, and new cookie keys are drawn on each start.
//
// The login page checks the password; consent is then granted without asking, so a user who
// signs in lands back at the client. A line "listening on <issuer>" says the provider is ready.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

import Provider, { errors } from 'oidc-provider';

const LOGIN_FORM_LIMIT = 16 * 1024; // bytes of a login form body; more is not a login

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const usersByName = new Map(config.users.map((user) => [user.username, user]));
const usersBySub = new Map(config.users.map((user) => [user.sub, user]));

function log(message) {
  process.stdout.write(`${new Date().toISOString()} ${message}\n`);
}

function clientMetadata(client) {
  return {
    client_id: client.client_id,
    client_secret: client.client_secret,
    redirect_uris: client.redirect_uris,
    post_logout_redirect_uris: client.post_logout_redirect_uris ?? [],
    // "native" accepts a loopback redirect URI on any port (RFC 8252, section 7.3).
    application_type: client.application_type ?? 'web',
    token_endpoint_auth_method: client.token_endpoint_auth_method ?? 'client_secret_basic',
    grant_types: ['authorization_code'],
    response_types: ['code'],
  };
}

async function findAccount(_ctx, sub) {
  const user = usersBySub.get(sub);
  if (user === undefined) {
    return undefined;
  }
  return {
    accountId: user.sub,
    async claims() {
      return {
        sub: user.sub,
        preferred_username: user.username,
        name: user.name,
        email: user.email,
        email_verified: true,
        groups: [...user.groups],
      };
    },
  };
}

const provider = new Provider(config.issuer, {
  clients: config.clients.map(clientMetadata),
  jwks: config.jwks,
  findAccount,
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: { enabled: true },
  },
  responseTypes: ['code'],
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  // Put the scopes' claims in the ID token too, not only behind the userinfo endpoint.
  conformIdTokenClaims: false,
  ttl: { Interaction: 600, Session: 3600, Grant: 3600 }, // seconds; set to keep the log quiet
  interactions: {
    url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
  },
});

for (const event of ['server_error', 'authorization.error', 'grant.error', 'end_session.error']) {
  provider.on(event, (_ctx, error) => {
    log(`${event}: ${error.message}${error.error_description ? ` (${error.error_description})` : ''}`);
  });
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(uid, { login = '', error = '' } = {}) {
  const alert = error ? `<p role="alert" class="error">${escapeHtml(error)}</p>` : '';
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in - test identity provider</title></head>
<body>
<main>
<h1>Sign in</h1>
${alert}
<form method="post" action="/interaction/${escapeHtml(uid)}" autocomplete="off">
<label>Username <input name="login" value="${escapeHtml(login)}" required autofocus></label>
<label>Password <input name="password" type="password" required></label>
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>
`;
}

function send(res, status, body, type = 'text/html; charset=utf-8') {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > LOGIN_FORM_LIMIT) {
      throw new RangeError('form too large');
    }
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// Grant what the client asked for: the "consent" this provider gives on the user's behalf.
async function grantConsent(req, res, details) {
  const { prompt, params, session } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) {
    grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  }
  if (prompt.details.missingOIDCClaims) {
    grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  }
  for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  const consent = details.grantId ? {} : { grantId };
  await provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
}

async function interaction(req, res, uid) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    send(res, 400, 'This sign-in page belongs to another request.\n', 'text/plain');
    return;
  }
  if (details.prompt.name === 'consent') {
    await grantConsent(req, res, details);
    return;
  }
  if (req.method === 'GET') {
    send(res, 200, loginPage(uid));
    return;
  }
  const form = await readForm(req);
  const login = form.get('login') ?? '';
  const user = usersByName.get(login);
  if (user === undefined || user.password !== (form.get('password') ?? '')) {
    log(`interaction ${uid}: sign-in refused for ${JSON.stringify(login)}`);
    send(res, 200, loginPage(uid, { login, error: 'Invalid username or password.' }));
    return;
  }
  log(`interaction ${uid}: ${user.username} signed in`);
  await provider.interactionFinished(
    req,
    res,
    { login: { accountId: user.sub } },
    { mergeWithLastSubmission: false },
  );
}

const providerCallback = provider.callback();
const INTERACTION_PATH = /^\/interaction\/([A-Za-z0-9_-]+)$/;

async function handle(req, res) {
  const path = new URL(req.url, config.issuer).pathname;
  res.on('finish', () => log(`${req.method} ${path} ${res.statusCode}`));
  const match = INTERACTION_PATH.exec(path);
  if (match === null) {
    providerCallback(req, res);
    return;
  }
  if (req.method !== 'GET' && req.method !== 'POST') {
    send(res, 405, 'Method not allowed.\n', 'text/plain');
    return;
  }
  try {
    await interaction(req, res, match[1]);
  } catch (error) {
    if (error instanceof errors.SessionNotFound) {
      send(res, 400, 'This sign-in request has expired; start again at the application.\n', 'text/plain');
    } else if (error instanceof RangeError) {
      send(res, 413, 'Request too large.\n', 'text/plain');
    } else {
      log(`interaction error: ${error.stack ?? error}`);
      send(res, 500, 'Internal error.\n', 'text/plain');
    }
  }
}

const server = config.tls
  ? https.createServer(
    { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) },
    handle,
  )
  : http.createServer(handle);

server.on('error', (error) => {
  log(`cannot serve: ${error.code ?? ''} ${error.message}`);
  process.exit(error.code === 'EADDRINUSE' ? 98 : 1);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}

server.listen(config.port, '127.0.0.1', () => {
  log(`listening on ${config.issuer}`);
});
