// A real OpenID Connect provider (oidc-provider) for the single sign-on tests, on loopback.
//
// node provider.mjs SETTINGS.json
//
// SETTINGS.json: {"port", "client": {"client_id", "client_secret", "redirect_uris"}, "accounts": PATH}.
// The accounts file ({"fiona": {"email", "name", "groups": [...]}}) is read at every sign-in, so a
// test can move a person between groups and see the change at their next login. Sign-in goes
// through the provider's own development interactions (a form that posts the account id); the
// consent of our one first-party client is granted without a page, as a company's provider does.
// Prints "listening <issuer>" once it accepts connections.

import { generateKeyPairSync, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";

import Provider from "oidc-provider";

const settings = JSON.parse(readFileSync(process.argv[2], "utf8"));
const issuer = `http://127.0.0.1:${settings.port}`;
const accounts = () => JSON.parse(readFileSync(settings.accounts, "utf8"));
const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });

const provider = new Provider(issuer, {
  clients: [
    {
      ...settings.client,
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
  ],
  jwks: { keys: [{ ...privateKey.export({ format: "jwk" }), kid: "test-key", use: "sig", alg: "RS256" }] },
  cookies: { keys: [randomBytes(32).toString("hex")] },
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name"],
    groups: ["groups"],
  },
  pkce: { required: () => true },
  async findAccount(ctx, id) {
    const account = accounts()[id];
    if (account === undefined) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, email_verified: true, ...accounts()[id] };
      },
    };
  },
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope("openid email profile groups");
    await grant.save();
    return grant;
  },
});

const server = provider.listen(settings.port, "127.0.0.1", () => {
  console.log(`listening ${issuer}`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
