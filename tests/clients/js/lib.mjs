// What the client scripts share: their settings, a record of every Cognito call a client makes, and
// the one-JSON-line-per-step output. Nothing printed here may hold a token or the password.
import { parseArgs } from 'node:util';

const TARGET_PREFIX = 'AWSCognitoIdentityProviderService.';

// Settings from argv, else the environment; the password only from the environment, so it is never
// on a command line (ps, a failed subprocess's repr).
export function settings() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      endpoint: { type: 'string', default: process.env.COGNITO_ENDPOINT },
      'user-pool-id': { type: 'string', default: process.env.COGNITO_USER_POOL_ID ?? 'cn-north-1_china' },
      'client-id': { type: 'string', default: process.env.COGNITO_CLIENT_ID ?? 'mobile' },
      username: { type: 'string', default: process.env.COGNITO_USERNAME },
    },
  });
  const missing = ['endpoint', 'username'].filter((name) => !values[name]);
  if (missing.length || !positionals.length) {
    throw new Error(`usage: --endpoint URL --username NAME [--user-pool-id ID] [--client-id ID] STEP...`
      + ` (missing: ${[...missing, ...(positionals.length ? [] : ['STEP'])].join(', ')}; password in COGNITO_PASSWORD)`);
  }
  return {
    endpoint: values.endpoint.replace(/\/+$/, ''),
    userPoolId: values['user-pool-id'],
    clientId: values['client-id'],
    username: values.username,
    password: process.env.COGNITO_PASSWORD ?? '',
    steps: positionals,
  };
}

// Every request to the Cognito API, whatever library sends it: the operation (X-Amz-Target), the HTTP
// status and Cognito's error name. Both libraries call the global fetch at request time.
const calls = [];
const realFetch = globalThis.fetch;

function headerOf(headers, name) {
  if (!headers) return undefined;
  if (typeof headers.get === 'function') return headers.get(name) ?? undefined;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : headers[key];
}

globalThis.fetch = async (input, init = {}) => {
  const target = headerOf(init.headers ?? input?.headers, 'x-amz-target');
  const call = { operation: target ? String(target).replace(TARGET_PREFIX, '') : null };
  calls.push(call);
  try {
    const response = await realFetch(input, init);
    call.status = response.status;
    const errorType = response.headers.get('x-amzn-errortype');
    if (errorType) call.error = errorType.split(':')[0];
    return response;
  } catch (error) {
    call.error = `fetch failed: ${error?.cause?.code ?? error?.name ?? 'unknown'}`;
    throw error;
  }
};

function takeCalls() {
  return calls.splice(0, calls.length);
}

function emit(line) {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

// A library's error as the tests compare it: Cognito's error name (Amplify's AuthError and
// amazon-cognito-identity-js both carry it in `name`/`code`), and a short message.
function errorOf(error) {
  const name = error?.name && error.name !== 'Error' ? error.name : (error?.code ?? error?.name ?? 'Error');
  return { error: String(name), message: String(error?.message ?? '').slice(0, 200) };
}

// Runs the steps in order, one line each; a failed step does not stop the sequence (the next steps
// show what state the client was left in). Exit status 0 whenever every step ran.
export async function run(steps, handlers) {
  for (const step of steps) {
    const handler = handlers[step];
    if (!handler) {
      emit({ step, ok: false, error: 'UnknownStep', message: `steps: ${Object.keys(handlers).join(', ')}` });
      process.exitCode = 2;
      return;
    }
    try {
      const result = await handler();
      emit({ step, ok: true, result: result ?? {}, calls: takeCalls() });
    } catch (error) {
      emit({ step, ok: false, ...errorOf(error), calls: takeCalls() });
    }
  }
}

// A call made outside the library, with a token the library held: GetUser, to see from the service's
// side whether that access token still works (after a global sign-out, it must not).
export async function getUser(endpoint, accessToken) {
  if (!accessToken) throw Object.assign(new Error('no access token was seen'), { name: 'NoTokenSeen' });
  const response = await globalThis.fetch(`${endpoint}/`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': `${TARGET_PREFIX}GetUser` },
    body: JSON.stringify({ AccessToken: accessToken }),
  });
  const body = await response.json();
  if (!response.ok) throw Object.assign(new Error(String(body.message ?? '')), { name: body.__type });
  return { username: body.Username, attributeNames: (body.UserAttributes ?? []).map((a) => a.Name).sort() };
}

// The claims of a JWT the tests may see (who and what kind of token), never the token itself.
export function claimsOf(jwt) {
  if (!jwt) return null;
  const payload = JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
  return { token_use: payload.token_use, sub: payload.sub, username: payload.username ?? payload['cognito:username'],
    client_id: payload.client_id, aud: payload.aud };
}

// TOTP codes (RFC 6238: HMAC-SHA1, 6 digits, 30 s) from a base32 secret, as an authenticator app makes
// them. Keycloak takes each code once, and the steps next to the current one: every code comes from a
// later step than the last one used, here or before this process (COGNITO_TOTP_AFTER, the step the
// tests used last), at most one step ahead. The step is returned so the tests can go on from it.
// Neither the secret nor a code is ever printed.
import { createHmac } from 'node:crypto';

let lastTotpStep = Number(process.env.COGNITO_TOTP_AFTER ?? 0);

function base32Bytes(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const char of text.replace(/=+$/, '').toUpperCase()) {
    const value = alphabet.indexOf(char);
    if (value < 0) throw new Error('the secret is not base32');
    bits += value.toString(2).padStart(5, '0');
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

export async function totpCode(secret) {
  if (!secret) throw Object.assign(new Error('no authenticator app secret'), { name: 'NoSecret' });
  let step = Math.max(Math.floor(Date.now() / 30000), lastTotpStep + 1);
  while (step > Math.floor(Date.now() / 30000) + 1) {
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  lastTotpStep = step;
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const digest = createHmac('sha1', base32Bytes(secret)).update(counter).digest();
  const offset = digest[digest.length - 1] & 0x0f;
  const number = (digest.readUInt32BE(offset) & 0x7fffffff) % 1000000;
  return { code: String(number).padStart(6, '0'), step };
}
