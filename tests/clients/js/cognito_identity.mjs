// amazon-cognito-identity-js, unchanged, pointed at the service by the pool's `endpoint`; runs the
// steps named on the command line and prints one JSON line per step (lib.mjs).
//   COGNITO_PASSWORD=... node cognito_identity.mjs --endpoint URL --username NAME authenticateUser ...
import { settings, run, getUser, claimsOf } from './lib.mjs';
import cognito from 'amazon-cognito-identity-js';

const { AuthenticationDetails, CognitoUser, CognitoUserPool } = cognito;

const config = settings();
const pool = new CognitoUserPool({ UserPoolId: config.userPoolId, ClientId: config.clientId, endpoint: config.endpoint });
const user = new CognitoUser({ Username: config.username, Pool: pool });
let session = null;
let lastAccessToken = null;  // for `getUserWithLastToken`, never printed

// The library's callbacks as a promise; an error keeps its Cognito name (`code`/`name`).
function call(start) {
  return new Promise((resolve, reject) => start((error, result) => (error ? reject(error) : resolve(result))));
}

function summary(newSession) {
  const previous = lastAccessToken;
  session = newSession;
  lastAccessToken = newSession.getAccessToken().getJwtToken();
  return {
    valid: newSession.isValid(),
    accessToken: claimsOf(lastAccessToken),
    idToken: claimsOf(newSession.getIdToken().getJwtToken()),
    accessTokenChanged: Boolean(previous && previous !== lastAccessToken),
  };
}

async function authenticate(flow) {
  user.setAuthenticationFlowType(flow);
  const details = new AuthenticationDetails({ Username: config.username, Password: config.password });
  const result = await new Promise((resolve, reject) => user.authenticateUser(details, {
    onSuccess: resolve,
    onFailure: reject,
    newPasswordRequired: () => reject(Object.assign(new Error('challenge'), { name: 'NEW_PASSWORD_REQUIRED' })),
    mfaRequired: () => reject(Object.assign(new Error('challenge'), { name: 'SMS_MFA' })),
    totpRequired: () => reject(Object.assign(new Error('challenge'), { name: 'SOFTWARE_TOKEN_MFA' })),
    mfaSetup: () => reject(Object.assign(new Error('challenge'), { name: 'MFA_SETUP' })),
  }));
  return summary(result);
}

await run(config.steps, {
  authenticateUser: () => authenticate('USER_PASSWORD_AUTH'),
  // The library's default flow: SRP (USER_SRP_AUTH, then PASSWORD_VERIFIER).
  authenticateUserSrp: () => authenticate('USER_SRP_AUTH'),
  getUserAttributes: async () => {
    const attributes = await call((done) => user.getUserAttributes(done));
    return { attributes: Object.fromEntries(attributes.map((a) => [a.getName(), a.getValue()])) };
  },
  refreshSession: async () => {
    if (!session) throw Object.assign(new Error('no session yet'), { name: 'NoSession' });
    return summary(await call((done) => user.refreshSession(session.getRefreshToken(), done)));
  },
  globalSignOut: () => new Promise((resolve, reject) => user.globalSignOut({
    onSuccess: () => resolve({}),
    onFailure: reject,
  })),
  getUserWithLastToken: () => getUser(config.endpoint, lastAccessToken),
});
