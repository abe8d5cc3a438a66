// AWS Amplify JS v6, unchanged, pointed at the service by `userPoolEndpoint` alone; runs the steps
// named on the command line and prints one JSON line per step (lib.mjs).
//   COGNITO_PASSWORD=... node amplify.mjs --endpoint URL --username NAME signIn fetchAuthSession ...
import { settings, run, getUser, claimsOf } from './lib.mjs';
import { Amplify } from 'aws-amplify';
import {
  signIn, confirmSignIn, signOut, fetchAuthSession, fetchUserAttributes, getCurrentUser,
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
    return { isSignedIn, signInStep: nextStep?.signInStep };
  };
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
