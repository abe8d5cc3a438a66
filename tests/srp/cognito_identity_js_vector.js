// Regenerates known-answer vectors (client_vectors.json) of test_srp.py with amazon-cognito-identity-js's own
// authenticateUser (unchanged), its randomness (a) and clock pinned, its network replaced by a
// function that answers InitiateAuth with fixed challenge parameters and records the answer.
//   npm install amazon-cognito-identity-js   (in a scratch directory)
//   NODE_PATH=<scratch>/node_modules node cognito_identity_js_vector.js < input.json
// input.json: one vector's "input" from client_vectors.json (b is the server's, unread here)
const fs = require('fs');
const input = JSON.parse(fs.readFileSync(0, 'utf8'));
const RealDate = Date;
global.Date = class extends RealDate {
	constructor(...args) { super(...(args.length ? args : [input.now])); }
	static now() { return input.now; }
};
const lib = require('amazon-cognito-identity-js');
const AuthenticationHelper = require('amazon-cognito-identity-js/lib/AuthenticationHelper').default;
const BigInteger = require('amazon-cognito-identity-js/lib/BigInteger').default;
AuthenticationHelper.prototype.generateRandomSmallA = () => new BigInteger(input.a, 16);

const pool = new lib.CognitoUserPool({ UserPoolId: input.userPoolId, ClientId: input.clientId });
const out = { package: require('amazon-cognito-identity-js/package.json').version };
pool.client.request = (operation, params, callback) => {
	if (operation === 'InitiateAuth') {
		out.srpA = params.AuthParameters.SRP_A;
		return callback(null, { ChallengeName: 'PASSWORD_VERIFIER', ChallengeParameters: {
			SRP_B: input.srpB, SALT: input.salt, SECRET_BLOCK: input.secretBlock,
			USER_ID_FOR_SRP: input.userIdForSrp, USERNAME: input.userIdForSrp } });
	}
	out.challengeResponses = params.ChallengeResponses;
	process.stdout.write(JSON.stringify(out, null, 1) + '\n');
	process.exit(0);
};
const user = new lib.CognitoUser({ Username: input.username, Pool: pool });
user.authenticateUser(new lib.AuthenticationDetails({ Username: input.username, Password: input.password }), {
	onSuccess: () => {}, onFailure: (err) => { console.error(err); process.exit(1); },
});
