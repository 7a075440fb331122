// An independent OpenID Connect provider for crates/cli/tests/upstream_node.rs:
// node-oidc-provider (pinned in package.json; .ci/run installs it into
// $GATEHOUSE_OIDC_PROVIDER_DIR) with one static confidential client, one
// account with a verified e-mail, and a minimal login page the test posts to.
//
// Environment: PORT (0: any), ISSUER_HOST (default localhost), CLIENT_ID,
// CLIENT_SECRET, REDIRECT_URI, CLAIMS_PARAMETER ("1": honour the `claims`
// request parameter, so `email` can be asked into the ID token; otherwise the
// ID token carries only `sub` and the e-mail is at userinfo, as this
// provider's `conformIdTokenClaims` does for the code flow).
// It prints `listening <port>` once it accepts connections.

import { createRequire } from 'node:module';
import { generateKeyPairSync } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const dir = process.env.GATEHOUSE_OIDC_PROVIDER_DIR;
const resolved = createRequire(path.join(dir, 'package.json')).resolve('oidc-provider');
const { default: Provider } = await import(pathToFileURL(resolved).href);

const ACCOUNT = {
  login: 'ann',
  password: 'ann-upstream-password',
  claims: { email: 'ann@acme.test', email_verified: true, name: 'Ann Upstream' },
};

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'k1', use: 'sig', alg: 'RS256' };

async function start(port) {
  const issuer = `http://${process.env.ISSUER_HOST || 'localhost'}:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: env('CLIENT_ID'),
      client_secret: env('CLIENT_SECRET'),
      redirect_uris: [env('REDIRECT_URI')],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: [jwk] },
    cookies: { keys: ['upstream-node-test-cookie-key'] },
    claims: { openid: ['sub', 'amr'], email: ['email', 'email_verified'], profile: ['name'] },
    features: {
      devInteractions: { enabled: false },
      claimsParameter: { enabled: process.env.CLAIMS_PARAMETER === '1' },
    },
    async findAccount(ctx, id) {
      if (id !== ACCOUNT.login) return undefined;
      return { accountId: id, async claims() { return { sub: id, ...ACCOUNT.claims }; } };
    },
    // First party: every scope and claim asked for is granted without a consent page.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid email profile');
      grant.addOIDCClaims(['email', 'email_verified', 'name']);
      await grant.save();
      return grant;
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  });

  // The login page: a form with `login`, `password` and `mfa` (ticked, the
  // sign-in's `amr` is ["pwd", "otp", "mfa"]; otherwise ["pwd"]).
  provider.use(async (ctx, next) => {
    const m = ctx.path.match(/^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/);
    if (!m) return next();
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== m[1]) ctx.throw(400, 'another interaction');
    if (ctx.method === 'GET') {
      ctx.type = 'html';
      ctx.body = `<!doctype html><title>Upstream sign-in</title><h1>Upstream sign-in</h1>
<form method="post" action="/interaction/${details.uid}/login">
<input name="login" value=""><input name="password" type="password">
<label><input type="checkbox" name="mfa" value="1"> with a second factor</label>
<button>Sign in</button></form>`;
      return undefined;
    }
    if (ctx.method !== 'POST' || !m[2]) ctx.throw(405);
    let raw = '';
    for await (const chunk of ctx.req) {
      raw += chunk;
      if (raw.length > 4096) ctx.throw(413);
    }
    const form = new URLSearchParams(raw);
    if (form.get('login') !== ACCOUNT.login || form.get('password') !== ACCOUNT.password) {
      ctx.status = 403;
      ctx.body = 'wrong login or password';
      return undefined;
    }
    const amr = form.get('mfa') === '1' ? ['pwd', 'otp', 'mfa'] : ['pwd'];
    const to = await provider.interactionResult(ctx.req, ctx.res, {
      login: { accountId: ACCOUNT.login, amr },
    }, { mergeWithLastSubmission: false });
    ctx.redirect(to);
    return undefined;
  });
  return provider;
}

// The issuer names the port, so the port is taken first.
const net = await import('node:net');
const port = Number(process.env.PORT || 0) || await new Promise((resolve, reject) => {
  const s = net.createServer();
  s.once('error', reject);
  s.listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
const provider = await start(port);
provider.listen(port, '127.0.0.1', () => {
  console.log(`listening ${port}`);
});
