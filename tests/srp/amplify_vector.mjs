// Regenerates the Amplify v6 known-answer vectors (client_vectors.json) of test_srp.py: aws-amplify's own signIn
// (default flow USER_SRP_AUTH), unchanged, its clock pinned and `fetch` answered locally: InitiateAuth
// with fixed challenge parameters; the RespondToAuthChallenge body is printed.
//   npm install aws-amplify@6   (in a scratch directory; run this file from there)
//   node amplify_vector.mjs < input.json
// input.json: one vector's "input" from client_vectors.json (b is the server's, unread here)
import fs from 'fs';
import { createRequire } from 'module';
const input = JSON.parse(fs.readFileSync(0, 'utf8'));
const RealDate = Date;
globalThis.Date = class extends RealDate {
	constructor(...args) { super(...(args.length ? args : [input.now])); }
	static now() { return input.now; }
};
const requireHere = createRequire(process.cwd() + '/');
const out = { package: requireHere('aws-amplify/package.json').version };
globalThis.fetch = async (url, init) => {
	const target = init.headers['x-amz-target'] || init.headers['X-Amz-Target'];
	const body = JSON.parse(init.body);
	const reply = (value) => new Response(JSON.stringify(value), { status: 200, headers: { 'content-type': 'application/x-amz-json-1.1' } });
	if (target.endsWith('.InitiateAuth')) {
		out.srpA = body.AuthParameters.SRP_A;
		return reply({ ChallengeName: 'PASSWORD_VERIFIER', ChallengeParameters: {
			SRP_B: input.srpB, SALT: input.salt, SECRET_BLOCK: input.secretBlock,
			USER_ID_FOR_SRP: input.userIdForSrp, USERNAME: input.userIdForSrp } });
	}
	out.challengeResponses = body.ChallengeResponses;
	process.stdout.write(JSON.stringify(out, null, 1) + '\n');
	process.exit(0);
};
const { Amplify } = requireHere('aws-amplify');
const { signIn } = requireHere('aws-amplify/auth');
Amplify.configure({ Auth: { Cognito: { userPoolId: input.userPoolId, userPoolClientId: input.clientId,
	userPoolEndpoint: 'http://127.0.0.1:9' } } });
await signIn({ username: input.username, password: input.password });
console.error('signIn returned without answering the challenge');
process.exit(1);
