package cn.identity.keycloak;

import jakarta.ws.rs.core.Response;

import org.keycloak.authentication.AuthenticationFlowContext;
import org.keycloak.authentication.AuthenticationFlowError;
import org.keycloak.authentication.authenticators.directgrant.ValidatePassword;
import org.keycloak.events.Errors;

/**
 * The direct-grant flow's password step, which also takes a first-login migration ticket
 * ({@link MigrationTicket}) in place of a password check. A token request without
 * {@code migration_ticket} is judged exactly as by Keycloak's own "Password" step (this class
 * extends it); one with a ticket is judged by the ticket alone: a wrong, used, expired, another
 * user's or another client's ticket fails like a wrong password, and never falls back to the
 * password. Everything else of the flow still applies: the username step before (disabled users,
 * brute-force lockouts), OTP and required actions after. A login made with a ticket says so in its
 * event ({@code legacy_migration_ticket}).
 */
public class LegacyTicketAuthenticator extends ValidatePassword {

    public static final String PROVIDER_ID = "legacy-migration-ticket-or-password";
    /** Auth note: the ticket says the service checked a one-time code too ({@link LegacyDirectGrantOtp}). */
    static final String OTP_CHECKED_NOTE = "legacy_ticket_code_checked";

    @Override
    public void authenticate(AuthenticationFlowContext context) {
        String ticket = context.getHttpRequest().getDecodedFormParameters().getFirst(MigrationTicket.PARAMETER);
        if (ticket == null) {
            super.authenticate(context);
            return;
        }
        String clientId = context.getAuthenticationSession().getClient() == null ? null
                : context.getAuthenticationSession().getClient().getClientId();
        MigrationTicket.Redemption redeemed = MigrationTicket.redeem(context.getSession(), context.getRealm(),
                context.getUser(), clientId, ticket);
        if (redeemed == MigrationTicket.Redemption.REFUSED) {
            context.getEvent().user(context.getUser());
            context.getEvent().error(Errors.INVALID_USER_CREDENTIALS);
            Response challenge = errorResponse(Response.Status.BAD_REQUEST.getStatusCode(), "invalid_grant",
                    "Invalid user credentials");
            context.failure(AuthenticationFlowError.INVALID_USER, challenge);
            return;
        }
        context.getEvent().detail("legacy_migration_ticket", "true");
        if (redeemed == MigrationTicket.Redemption.PASSWORD_AND_CODE) {
            context.getAuthenticationSession().setAuthNote(OTP_CHECKED_NOTE, "true");
        }
        context.getAuthenticationSession().setAuthNote("PASSWORD_VALIDATED", "true");
        context.success("password");
    }

    @Override
    public String getId() {
        return PROVIDER_ID;
    }

    @Override
    public String getDisplayType() {
        return "Password or legacy migration ticket";
    }

    @Override
    public String getHelpText() {
        return "Keycloak's direct-grant password check; a first-login migration ticket minted by "
                + "/realms/{realm}/legacy-migration stands for the password in the token request that follows.";
    }
}
