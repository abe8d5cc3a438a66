// AWS Amplify JS v6, unchanged, pointed at the service by `userPoolEndpoint` alone; runs the steps
// named on the command line and prints one JSON line per step (lib.mjs).
//   COGNITO_PASSWORD=... node amplify.mjs --endpoint URL --username NAME signIn fetchAuthSession ...
import { settings, run, getUser, claimsOf, totpCode } from './lib.mjs';
import { Amplify } from 'aws-amplify';
import {
  signIn, confirmSignIn, signOut, fetchAuthSession, fetchUserAttributes, getCurrentUser,
  setUpTOTP, verifyTOTPSetup, updateMFAPreference, fetchMFAPreference,
} from 'aws-amplify/auth';
import { cognitoUserPoolsTokenProvider } from 'aws-amplify/auth/cognito';
import { sharedInMemoryStorage } from 'aws-amplify/utils';

const config = settings();
Amplify.configure({
  Auth: {
    Cognito: {
      userPoolId: config.userPoolId,
      userPoolClientId: config.clientId,
      userPoolEndpoint: config.endpoint,
    },
  },
});
// Node has no localStorage: keep the tokens in memory, for this process only.
cognitoUserPoolsTokenProvider.setKeyValueStorage(sharedInMemoryStorage);

let lastAccessToken = null;  // for `getUserWithLastToken`, never printed
// The authenticator app's secret (base32): from the tests (COGNITO_TOTP_SECRET), or the one Amplify was
// given while setting an app up in this process. Never printed.
let totpSecret = process.env.COGNITO_TOTP_SECRET || null;
let lastNextStep = null;

async function session(forceRefresh) {
  const { tokens } = await fetchAuthSession({ forceRefresh });
  const previous = lastAccessToken;
  lastAccessToken = tokens?.accessToken?.toString() ?? lastAccessToken;
  return {
    signedIn: Boolean(tokens?.accessToken),
    accessToken: claimsOf(tokens?.accessToken?.toString()),
    idToken: claimsOf(tokens?.idToken?.toString()),
    accessTokenChanged: Boolean(previous && tokens?.accessToken && previous !== tokens.accessToken.toString()),
  };
}

function signInWith(authFlowType) {
  return async () => {
    const options = authFlowType ? { authFlowType } : undefined;
    const { isSignedIn, nextStep } = await signIn({ username: config.username, password: config.password, options });
    lastNextStep = nextStep;
    return { isSignedIn, signInStep: nextStep?.signInStep };
  };
}

// confirmSignIn with the app's next code; `fromSetup`: the secret is the one the MFA_SETUP step gave.
async function confirmWithCode(fromSetup) {
  if (fromSetup) totpSecret = lastNextStep?.totpSetupDetails?.sharedSecret ?? null;
  const { code, step } = await totpCode(totpSecret);
  const { isSignedIn, nextStep } = await confirmSignIn({ challengeResponse: code });
  lastNextStep = nextStep;
  return { isSignedIn, signInStep: nextStep?.signInStep, totpStep: step };
}

await run(config.steps, {
  // Today's flow: the password to the service (Cognito's migration flow).
  signIn: signInWith('USER_PASSWORD_AUTH'),
  // Amplify's default flow, USER_SRP_AUTH.
  signInDefault: signInWith(undefined),
  // The answer to NEW_PASSWORD_REQUIRED (CONFIRM_SIGN_IN_WITH_NEW_PASSWORD_REQUIRED): the new password
  // from COGNITO_NEW_PASSWORD, never on the command line.
  'confirmSignIn:newPassword': async () => {
    const { isSignedIn, nextStep } = await confirmSignIn({ challengeResponse: process.env.COGNITO_NEW_PASSWORD ?? '' });
    return { isSignedIn, signInStep: nextStep?.signInStep };
  },
  // SOFTWARE_TOKEN_MFA (CONFIRM_SIGN_IN_WITH_TOTP_CODE): the app's code.
  'confirmSignIn:totp': () => confirmWithCode(false),
  // MFA_SETUP (CONTINUE_SIGN_IN_WITH_TOTP_SETUP): the first code of the secret the step showed.
  'confirmSignIn:totpSetup': () => confirmWithCode(true),
  // A signed-in user's settings page: a new app, its first code, then TOTP preferred.
  setUpTOTP: async () => {
    const details = await setUpTOTP();
    totpSecret = details.sharedSecret;
    return { secretLength: totpSecret.length, setupUri: details.getSetupUri('China app').protocol };
  },
  verifyTOTPSetup: async () => {
    const { code, step } = await totpCode(totpSecret);
    await verifyTOTPSetup({ code });
    return { totpStep: step };
  },
  'updateMFAPreference:totp': async () => { await updateMFAPreference({ totp: 'PREFERRED' }); },
  'updateMFAPreference:off': async () => { await updateMFAPreference({ totp: 'DISABLED' }); },
  fetchMFAPreference: async () => {
    const { enabled, preferred } = await fetchMFAPreference();
    return { enabled: enabled ?? [], preferred: preferred ?? null };
  },
  getCurrentUser: async () => {
    const { username, userId } = await getCurrentUser();
    return { username, userId };
  },
  fetchAuthSession: () => session(false),
  // Amplify's token refresh.
  'fetchAuthSession:forceRefresh': () => session(true),
  fetchUserAttributes: async () => ({ attributes: await fetchUserAttributes() }),
  signOut: async () => { await signOut(); },
  'signOut:global': async () => { await signOut({ global: true }); },
  getUserWithLastToken: () => getUser(config.endpoint, lastAccessToken),
});
