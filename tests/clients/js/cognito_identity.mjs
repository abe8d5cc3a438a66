// amazon-cognito-identity-js, unchanged, pointed at the service by the pool's `endpoint`; runs the
// steps named on the command line and prints one JSON line per step (lib.mjs).
//   COGNITO_PASSWORD=... node cognito_identity.mjs --endpoint URL --username NAME authenticateUser ...
import { settings, run, getUser, claimsOf, totpCode } from './lib.mjs';
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

// `withCode`: answer SOFTWARE_TOKEN_MFA with the next code of the app whose secret the tests gave
// (COGNITO_TOTP_SECRET, never printed); without it, any challenge ends the step with the challenge's name.
async function authenticate(flow, withCode = false) {
  user.setAuthenticationFlowType(flow);
  const details = new AuthenticationDetails({ Username: config.username, Password: config.password });
  let totpStep = null;
  const result = await new Promise((resolve, reject) => {
    const callbacks = {
      onSuccess: resolve,
      onFailure: reject,
      newPasswordRequired: () => reject(Object.assign(new Error('challenge'), { name: 'NEW_PASSWORD_REQUIRED' })),
      mfaRequired: () => reject(Object.assign(new Error('challenge'), { name: 'SMS_MFA' })),
      totpRequired: (challengeName) => {
        if (!withCode) {
          reject(Object.assign(new Error('challenge'), { name: 'SOFTWARE_TOKEN_MFA' }));
          return;
        }
        totpCode(process.env.COGNITO_TOTP_SECRET).then(({ code, step }) => {
          totpStep = step;
          user.sendMFACode(code, callbacks, challengeName);
        }, reject);
      },
      mfaSetup: () => reject(Object.assign(new Error('challenge'), { name: 'MFA_SETUP' })),
    };
    user.authenticateUser(details, callbacks);
  });
  return { ...summary(result), ...(totpStep === null ? {} : { totpStep }) };
}

await run(config.steps, {
  authenticateUser: () => authenticate('USER_PASSWORD_AUTH'),
  // The library's default flow: SRP (USER_SRP_AUTH, then PASSWORD_VERIFIER).
  authenticateUserSrp: () => authenticate('USER_SRP_AUTH'),
  // The same, for a user with an authenticator app: SOFTWARE_TOKEN_MFA answered with its code.
  'authenticateUser:totp': () => authenticate('USER_PASSWORD_AUTH', true),
  'authenticateUserSrp:totp': () => authenticate('USER_SRP_AUTH', true),
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
