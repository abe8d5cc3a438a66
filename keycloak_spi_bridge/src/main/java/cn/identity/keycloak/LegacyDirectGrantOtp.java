package cn.identity.keycloak;

import jakarta.ws.rs.core.MultivaluedMap;
import jakarta.ws.rs.core.Response;

import org.keycloak.authentication.AuthenticationFlowContext;
import org.keycloak.authentication.AuthenticationFlowError;
import org.keycloak.authentication.authenticators.directgrant.ValidateOTP;
import org.keycloak.events.Errors;
import org.keycloak.models.UserCredentialModel;
import org.keycloak.models.credential.OTPCredentialModel;

/**
 * The direct-grant flow's one-time code step, for the service's sign-ins (Cognito's
 * {@code SOFTWARE_TOKEN_MFA}). Keycloak's own step ({@link ValidateOTP}, which this extends) answers
 * a missing code as it answers a wrong password, and counts it as a failed login: the service could
 * not tell "the password is right, now the code" from "wrong password". Here:
 * <ul>
 * <li>no code: a challenge, {@value #CODE_REQUIRED}, not counted (the password step before it has
 * judged the password, and counted it when wrong);</li>
 * <li>a wrong code: a failed login, counted by brute-force detection, {@value #CODE_WRONG};</li>
 * <li>a ticket the service minted after it checked a code itself (the code that set the
 * authenticator app up, {@link MigrationTicket}): no second code.</li>
 * </ul>
 * A user without an authenticator app never reaches it (the subflow's condition).
 */
public class LegacyDirectGrantOtp extends ValidateOTP {

    public static final String PROVIDER_ID = "legacy-direct-grant-otp";
    static final String CODE_REQUIRED = "One-time code required";
    static final String CODE_WRONG = "Invalid one-time code";

    @Override
    public void authenticate(AuthenticationFlowContext context) {
        if (!configuredFor(context.getSession(), context.getRealm(), context.getUser())) {
            super.authenticate(context);
            return;
        }
        if ("true".equals(context.getAuthenticationSession().getAuthNote(LegacyTicketAuthenticator.OTP_CHECKED_NOTE))) {
            context.success(OTPCredentialModel.TYPE);
            return;
        }
        MultivaluedMap<String, String> form = context.getHttpRequest().getDecodedFormParameters();
        String otp = form.getFirst("otp") == null ? form.getFirst("totp") : form.getFirst("otp");
        if (otp == null || otp.isEmpty()) {
            context.challenge(errorResponse(Response.Status.UNAUTHORIZED.getStatusCode(), "invalid_grant",
                    CODE_REQUIRED));
            return;
        }
        String credentialId = getCredentialProvider(context.getSession())
                .getDefaultCredential(context.getSession(), context.getRealm(), context.getUser()).getId();
        boolean valid = otp.length() <= 16 && getCredentialProvider(context.getSession()).isValid(context.getRealm(),
                context.getUser(), new UserCredentialModel(credentialId, OTPCredentialModel.TYPE, otp));
        if (!valid) {
            context.getEvent().user(context.getUser());
            context.getEvent().error(Errors.INVALID_USER_CREDENTIALS);
            context.failure(AuthenticationFlowError.INVALID_CREDENTIALS,
                    errorResponse(Response.Status.BAD_REQUEST.getStatusCode(), "invalid_grant", CODE_WRONG));
            return;
        }
        context.success(OTPCredentialModel.TYPE);
    }

    @Override
    public String getId() {
        return PROVIDER_ID;
    }

    @Override
    public String getDisplayType() {
        return "OTP (the service's sign-ins)";
    }

    @Override
    public String getHelpText() {
        return "Validates the one-time code of an 'otp' form parameter; a missing code is a challenge the "
                + "service turns into Cognito's SOFTWARE_TOKEN_MFA, not a failed login.";
    }
}
