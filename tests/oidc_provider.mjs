// A real, certified OpenID Provider (node's oidc-provider) for tests/test_oidc.py, on 127.0.0.1 only.
//
//   node tests/oidc_provider.mjs CONFIG.json      (prints "listening" once it answers)
//
// CONFIG holds the issuer URL and port, the signing keys (private JWKs the test made, so it can tell a genuine
// token from a forged one), the static clients and the accounts (sub -> claims). Sign-in is completed without
// a person: the interaction page takes a POST of `account=<sub>` (the test's stand-in for a login form), and
// consent is granted at once for the configured clients, as a company's IdP does for its first-party apps.
import fs from 'node:fs';
import http from 'node:http';
import Provider from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const accounts = config.accounts;
const SCOPE = 'openid email profile';

const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: { keys: config.keys },
  // RP-Initiated Logout's POST (which the specification requires of every provider; contactcard posts the ID token
  // rather than put it in a URL). oidc-provider accepts POSTs only with its session cookie SameSite=None: a form
  // posted from another site carries no Lax cookie, and the provider would not know whose session to end.
  enableHttpPostMethods: true,
  cookies: { keys: ['contactcard-test-cookie-key'], long: { httpOnly: true, sameSite: 'none' } },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'] },
  // Real IdPs (Google, Okta) put the email in the ID token; so does this one.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  pkce: { required: () => true },
  ttl: { IdToken: config.id_token_ttl || 3600 },
  async findAccount(ctx, sub) {
    if (!(sub in accounts)) return undefined;
    return { accountId: sub, async claims() { return { sub, ...accounts[sub] }; } };
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async loadExistingGrant(ctx) {
    const existing = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (existing) return ctx.oidc.provider.Grant.find(existing);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope(SCOPE);
    await grant.save();
    return grant;
  },
});

const callback = provider.callback();

async function interaction(req, res) {
  if (req.method !== 'POST') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('POST account=<sub> to sign in');
    return;
  }
  let body = '';
  for await (const chunk of req) body += chunk;
  const account = new URLSearchParams(body).get('account');
  await provider.interactionDetails(req, res);  // refuses an unknown or expired interaction
  await provider.interactionFinished(req, res, { login: { accountId: account } }, { mergeWithLastSubmission: false });
}

const server = http.createServer((req, res) => {
  if (config.secure_cookies) {
    // A real provider is served over https, where its cookies are Secure; this one is plain http on 127.0.0.1.
    // Chromium drops a SameSite=None cookie without Secure (and keeps Secure ones from 127.0.0.1), so for a browser
    // the cookies get the attribute https would give them. (Python's cookie jar sends no Secure cookie over http.)
    const setHeader = res.setHeader.bind(res);
    res.setHeader = (name, value) => setHeader(name, name.toLowerCase() !== 'set-cookie' ? value
      : [].concat(value).map((cookie) => (/;\s*samesite=none/i.test(cookie) ? `${cookie}; secure` : cookie)));
  }
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(String(err));
    });
    return;
  }
  callback(req, res);
});
server.listen(config.port, '127.0.0.1', () => console.log('listening'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
