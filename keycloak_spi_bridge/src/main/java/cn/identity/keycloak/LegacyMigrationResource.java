package cn.identity.keycloak;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.PUT;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.WebApplicationException;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;

import org.jboss.logging.Logger;
import org.keycloak.connections.jpa.support.EntityManagers;
import org.keycloak.credential.CredentialProvider;
import org.keycloak.credential.PasswordCredentialProvider;
import org.keycloak.credential.PasswordCredentialProviderFactory;
import org.keycloak.credential.hash.PasswordHashProvider;
import org.keycloak.models.ClientModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.PasswordPolicy;
import org.keycloak.models.RealmModel;
import org.keycloak.models.RoleModel;
import org.keycloak.models.UserModel;
import org.keycloak.models.UserSessionModel;
import org.keycloak.models.credential.OTPCredentialModel;
import org.keycloak.models.credential.PasswordCredentialModel;
import org.keycloak.models.utils.CredentialValidation;
import org.keycloak.services.managers.AppAuthManager;
import org.keycloak.services.managers.AuthenticationManager;
import org.keycloak.services.managers.BruteForceProtector;
import org.keycloak.utils.CredentialHelper;

/**
 * {@code POST /realms/{realm}/legacy-migration/users/{id}/password}: the first-login migration's
 * write, in one call and one transaction. Keycloak takes the legacy password (hashed as the realm's
 * policy says; a legacy password the policy refuses is stored all the same, since it was valid
 * where the user chose it) and the user's read-only migration state becomes "migrated". If the
 * user already has a Keycloak password (they reset it at Keycloak's own pages meanwhile), nothing
 * is overwritten: 409, and the service forgets the legacy hash instead ({@link PasswordWrites}:
 * the same holds when the reset happens at the same moment). With
 * {@code "ticket_for_client": "<client id>"} the answer (200) carries a {@link MigrationTicket} for
 * that client's token request that follows.
 *
 * Only the service itself may call it: a bearer token of the service account of the client the
 * realm names in its {@value #SERVICE_CLIENT_ATTRIBUTE} attribute (the bootstrap writes the
 * service's IDENTITY_KEYCLOAK_ADMIN_CLIENT_ID there), still holding realm-management's
 * manage-users. Support staff hold manage-users too, to unlock and disable users; they, and any
 * other client, get 403. A realm without the attribute refuses everyone.
 */
public class LegacyMigrationResource {

    static final String SERVICE_CLIENT_ATTRIBUTE = "legacyMigrationServiceClient";
    private static final Logger LOG = Logger.getLogger(LegacyMigrationResource.class);
    private final KeycloakSession session;

    public LegacyMigrationResource(KeycloakSession session) {
        this.session = session;
    }

    @POST
    @Path("users/{id}/password")
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces(MediaType.APPLICATION_JSON)
    public Response setPassword(@PathParam("id") String id, Map<String, Object> body) {
        RealmModel realm = session.getContext().getRealm();
        Object password = body == null ? null : body.get("password");
        UserModel user = target(realm, id, password instanceof String && !((String) password).isEmpty()
                && ((String) password).length() <= 4096);
        // The usual case answered without hashing; the check that counts is made under the lock.
        boolean exists = user.credentialManager().isConfiguredFor(PasswordCredentialModel.TYPE);
        PasswordCredentialModel hashed = null;
        if (!exists) {
            // Hashed before the lock is taken: others wait on it only for the check and the write.
            hashed = hash(realm, (String) password);
            PasswordWrites.lock(session, user);
            exists = !PasswordWrites.committed(session, user).isEmpty();
        }
        if (exists) {
            MigrationState.markMigrated(user);
            return error(409, "password_exists");
        }
        PasswordCredentialProvider credentials = (PasswordCredentialProvider) session.getProvider(
                CredentialProvider.class, PasswordCredentialProviderFactory.PROVIDER_ID);
        credentials.createCredential(realm, user, hashed);
        MigrationState.markMigrated(user);
        Object client = body.get("ticket_for_client");
        if (client instanceof String && !((String) client).isEmpty() && ((String) client).length() <= 255) {
            return Response.ok(Map.of("ticket", MigrationTicket.mint(session, realm, user, (String) client)))
                    .type(MediaType.APPLICATION_JSON).build();
        }
        return Response.noContent().build();
    }

    /**
     * {@code POST .../users/{id}/ticket} with {@code {"ticket_for_client": "<client id>"}}: a
     * {@link MigrationTicket} for that client's token request that follows, when the service has
     * itself proved the user's password (an SRP sign-in: the password never reaches the service).
     * The grant still runs the flow's username step, so a disabled or locked-out user gets no
     * tokens. With {@code "code_checked": true} the service has checked the user's one-time code in
     * this sign-in as well (the code that set their authenticator app up), and the flow's code step
     * asks none. The service account can set any user's password and authenticator app already:
     * this adds no power.
     */
    @POST
    @Path("users/{id}/ticket")
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces(MediaType.APPLICATION_JSON)
    public Response ticket(@PathParam("id") String id, Map<String, Object> body) {
        RealmModel realm = session.getContext().getRealm();
        Object client = body == null ? null : body.get("ticket_for_client");
        UserModel user = target(realm, id, client instanceof String && !((String) client).isEmpty()
                && ((String) client).length() <= 255);
        boolean codeChecked = Boolean.TRUE.equals(body.get("code_checked"));
        return Response.ok(Map.of("ticket", MigrationTicket.mint(session, realm, user, (String) client, codeChecked)))
                .type(MediaType.APPLICATION_JSON).build();
    }

    /**
     * {@code POST .../users/{id}/software-token} with {@code {"secret", "code", "label"}}: the
     * user's authenticator app (Cognito's VerifySoftwareToken), as Keycloak's own "Configure OTP"
     * page makes it: the code checked against the secret under the realm's OTP policy, then one OTP
     * credential of that secret in place of any the user had (Cognito keeps one software token per
     * user), and the CONFIGURE_TOTP action done. The code is spent as a sign-in's would be. From then
     * on the login page and the service's sign-ins ask for its codes. 400 {@code invalid_code} for a
     * code that does not match, and nothing changes.
     */
    @POST
    @Path("users/{id}/software-token")
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces(MediaType.APPLICATION_JSON)
    public Response softwareToken(@PathParam("id") String id, Map<String, Object> body) {
        RealmModel realm = session.getContext().getRealm();
        Object secret = body == null ? null : body.get("secret");
        Object code = body == null ? null : body.get("code");
        Object label = body == null ? null : body.get("label");
        UserModel user = target(realm, id, secret instanceof String && ((String) secret).length() >= 16
                && ((String) secret).length() <= 128 && code instanceof String && !((String) code).isEmpty()
                && ((String) code).length() <= 16 && (label == null || label instanceof String
                && ((String) label).length() <= 255));
        String name = label == null || ((String) label).isEmpty() ? "Authenticator app" : (String) label;
        OTPCredentialModel model = OTPCredentialModel.createFromPolicy(realm, (String) secret, name);
        if (!CredentialValidation.validOTP((String) code, model, realm.getOTPPolicy().getLookAheadWindow())) {
            return error(400, "invalid_code");
        }
        user.credentialManager().getStoredCredentialsByTypeStream(OTPCredentialModel.TYPE).toList()
                .forEach(old -> user.credentialManager().removeStoredCredentialById(old.getId()));
        if (!CredentialHelper.createOTPCredential(session, realm, user, (String) code, model)) {
            // The code was right a moment ago: only its reuse (spent meanwhile) fails here.
            session.getTransactionManager().setRollbackOnly();
            return error(400, "invalid_code");
        }
        user.removeRequiredAction(UserModel.RequiredAction.CONFIGURE_TOTP);
        return Response.noContent().build();
    }

    /**
     * {@code POST .../users/{id}/session} with {@code {"session": "<sid>", "client": "<client id>"}}:
     * 204 while the user's session is alive, enabled, and signed in to that client; 404 otherwise (a
     * global sign-out, a revoked refresh token, an expired or unknown session). The service asks it of
     * every access token it accepts, as Keycloak's userinfo would, which refuses tokens carrying
     * Cognito's issuer ({@link CognitoIssuerMapper}).
     */
    @POST
    @Path("users/{id}/session")
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces(MediaType.APPLICATION_JSON)
    public Response sessionAlive(@PathParam("id") String id, Map<String, Object> body) {
        RealmModel realm = session.getContext().getRealm();
        Object sid = body == null ? null : body.get("session");
        Object clientId = body == null ? null : body.get("client");
        UserModel user = target(realm, id, sid instanceof String && !((String) sid).isEmpty()
                && ((String) sid).length() <= 64 && clientId instanceof String && !((String) clientId).isEmpty()
                && ((String) clientId).length() <= 255);
        ClientModel client = realm.getClientByClientId((String) clientId);
        UserSessionModel userSession = session.sessions().getUserSession(realm, (String) sid);
        boolean alive = user.isEnabled() && client != null && userSession != null
                && user.getId().equals(userSession.getUser().getId())
                && userSession.getAuthenticatedClientSessionByClient(client.getId()) != null;
        return alive ? Response.noContent().build() : error(404, "session_not_active");
    }

    /**
     * {@code POST .../users/{id}/failed-login}: the service judged a password wrong without Keycloak
     * seeing it (an SRP sign-in); Keycloak's brute-force detection counts it like any other, so a
     * lockout earned over SRP holds at the login page and the password grant, and the reverse.
     */
    @POST
    @Path("users/{id}/failed-login")
    @Produces(MediaType.APPLICATION_JSON)
    public Response failedLogin(@PathParam("id") String id) {
        RealmModel realm = session.getContext().getRealm();
        UserModel user = target(realm, id, true);
        if (realm.isBruteForceProtected()) {
            BruteForceProtector protector = session.getProvider(BruteForceProtector.class);
            protector.failedLogin(realm, user, session.getContext().getConnection(), session.getContext().getUri(),
                    Set.of(PasswordCredentialModel.TYPE));
        }
        return Response.noContent().build();
    }

    /**
     * {@code PUT .../users/{id}/state}: the importer's write of an imported user's Kii userID and
     * state (pending, reset_required) where partialImport cannot carry them (a user created one by
     * one, a later delivery that changes the state). A migrated user stays migrated.
     */
    @PUT
    @Path("users/{id}/state")
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces(MediaType.APPLICATION_JSON)
    public Response setState(@PathParam("id") String id, Map<String, Object> body) {
        RealmModel realm = session.getContext().getRealm();
        Object kii = body == null ? null : body.get("kii_user_id");
        Object state = body == null ? null : body.get("state");
        UserModel user = target(realm, id, kii instanceof String && !((String) kii).isEmpty()
                && ((String) kii).length() <= 64 && ("pending".equals(state) || "reset_required".equals(state)));
        String current = user.getFirstAttribute(MigrationState.KII_USER_ID);
        if (current != null && !current.equals(kii)) {
            return error(409, "kii_user_id_differs");
        }
        user.setSingleAttribute(MigrationState.KII_USER_ID, (String) kii);
        MigrationState.set(user, (String) state);
        return Response.noContent().build();
    }

    /**
     * {@code GET .../users?field=&match=eq|prefix&value=&after=&max=}: a page of the realm's users in
     * username order ({@link UserPages}), each as the Admin API represents them plus whether they have
     * a password; {@code next} is the {@code after} of the page that follows, absent on the last.
     * Cognito's ListUsers, for the service's SigV4-signed admin API.
     */
    @GET
    @Path("users")
    @Produces(MediaType.APPLICATION_JSON)
    public Response users(@QueryParam("field") String field, @QueryParam("match") String match,
                          @QueryParam("value") String value, @QueryParam("after") String after,
                          @QueryParam("max") Integer max) {
        RealmModel realm = session.getContext().getRealm();
        return Response.ok(pages(realm, field, match, value, after, max).page(session, realm))
                .type(MediaType.APPLICATION_JSON).build();
    }

    /** {@code GET .../users/plan?...}: the database's plan of that page's statement (MariaDB, MySQL). */
    @GET
    @Path("users/plan")
    @Produces(MediaType.APPLICATION_JSON)
    public Response usersPlan(@QueryParam("field") String field, @QueryParam("match") String match,
                              @QueryParam("value") String value, @QueryParam("after") String after,
                              @QueryParam("max") Integer max) {
        String plan = pages(session.getContext().getRealm(), field, match, value, after, max).plan();
        return plan == null ? error(501, "plan_unavailable")
                : Response.ok(Map.of("plan", plan)).type(MediaType.APPLICATION_JSON).build();
    }

    private UserPages pages(RealmModel realm, String field, String match, String value, String after, Integer max) {
        Response refused = authorise(realm);
        if (refused != null) {
            throw new WebApplicationException(refused);
        }
        if (max == null || max < 1 || max > UserPages.MAX_PAGE || after != null && after.length() > 255) {
            throw new WebApplicationException(error(400, "invalid_request"));
        }
        try {
            return new UserPages(PasswordWrites.entities(session), UserPages.mysql(session), realm, UserPages.Filter.of(field, match, value),
                    after, max);
        } catch (IllegalArgumentException e) {
            throw new WebApplicationException(error(400, "invalid_filter"));
        }
    }

    /**
     * {@code GET .../users/compact?after=&to=&max=}: the bulk read of {@code identity migration verify}, a page
     * of the realm's users in id order (after {@code after}, up to {@code to} inclusive when given) with only
     * the fields it compares, in straight SQL ({@link CompactUsers}); {@code next} is the {@code after} of the
     * page that follows, absent on the last.
     */
    @GET
    @Path("users/compact")
    @Produces(MediaType.APPLICATION_JSON)
    public Response compactUsers(@QueryParam("after") String after, @QueryParam("to") String to,
                                 @QueryParam("max") Integer max) {
        return Response.ok(compact(after, to, max).json()).type(MediaType.APPLICATION_JSON).build();
    }

    /**
     * {@code GET .../users/compact/plan?...}: the database's plan of each statement that page runs (MariaDB,
     * MySQL), by name: {@code page}, {@code attributes}, {@code passwords}.
     */
    @GET
    @Path("users/compact/plan")
    @Produces(MediaType.APPLICATION_JSON)
    public Response compactUsersPlan(@QueryParam("after") String after, @QueryParam("to") String to,
                                     @QueryParam("max") Integer max) {
        CompactUsers page = compact(after, to, max);
        return !UserPages.mysql(session) ? error(501, "plan_unavailable")
                : Response.ok(page.plans()).type(MediaType.APPLICATION_JSON).build();
    }

    private CompactUsers compact(String after, String to, Integer max) {
        RealmModel realm = session.getContext().getRealm();
        Response refused = authorise(realm);
        if (refused != null) {
            throw new WebApplicationException(refused);
        }
        if (max == null || max < 1 || max > CompactUsers.MAX_PAGE || after != null && after.length() > 255
                || to != null && to.length() > 255) {
            throw new WebApplicationException(error(400, "invalid_request"));
        }
        return new CompactUsers(PasswordWrites.entities(session), UserPages.mysql(session), realm, after, to, max);
    }

    /**
     * {@code POST .../users/bulk} with {@code {"users": [...]}}: the importer's batch of Kii users,
     * created or brought up to date in this request's one transaction ({@link BulkUsers}); the answer
     * lists each user's outcome ({@code created}, {@code updated}, {@code unchanged}, or
     * {@code refused} with a {@code reason}). The same batch again changes nothing, so a batch cut off
     * midway is sent again whole.
     */
    @POST
    @Path("users/bulk")
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces(MediaType.APPLICATION_JSON)
    public Response bulk(Map<String, Object> body) {
        RealmModel realm = session.getContext().getRealm();
        Response refused = authorise(realm);
        if (refused != null) {
            return refused;
        }
        List<BulkUsers.Wanted> batch;
        try {
            batch = BulkUsers.parse(body == null ? null : body.get("users"));
        } catch (IllegalArgumentException e) {
            return error(400, "invalid_request");
        }
        return Response.ok(Map.of("results", new BulkUsers(session, realm).write(batch)))
                .type(MediaType.APPLICATION_JSON).build();
    }

    /**
     * {@code POST .../users/bulk/plan} with a batch as for {@code users/bulk}: the database's plan of
     * each lookup that batch makes (MariaDB, MySQL), and nothing written.
     */
    @POST
    @Path("users/bulk/plan")
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces(MediaType.APPLICATION_JSON)
    public Response bulkPlan(Map<String, Object> body) {
        RealmModel realm = session.getContext().getRealm();
        Response refused = authorise(realm);
        if (refused != null) {
            return refused;
        }
        if (!UserPages.mysql(session)) {
            return error(501, "plan_unavailable");
        }
        try {
            List<BulkUsers.Wanted> batch = BulkUsers.parse(body == null ? null : body.get("users"));
            return Response.ok(new BulkUsers(session, realm).plans(batch)).type(MediaType.APPLICATION_JSON).build();
        } catch (IllegalArgumentException e) {
            return error(400, "invalid_request");
        }
    }

    /**
     * {@code POST .../users/disable} with {@code {"ids": [...]}} (1 to 1000 Keycloak user ids): the
     * importer's deletions (users deleted on Kii), a batch disabled in this request's one transaction
     * instead of a GET and a PUT of the Admin API per user. Each id is answered in the order given:
     * {@code disabled}, {@code unchanged} (disabled already) or {@code missing} (no such user in this
     * realm). The same batch again disables nothing, so a batch cut off midway is sent again whole.
     */
    @POST
    @Path("users/disable")
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces(MediaType.APPLICATION_JSON)
    public Response disable(Map<String, Object> body) {
        RealmModel realm = session.getContext().getRealm();
        Response refused = authorise(realm);
        if (refused != null) {
            return refused;
        }
        Object ids = body == null ? null : body.get("ids");
        if (!(ids instanceof List<?> list) || list.isEmpty() || list.size() > BulkUsers.MAX_BATCH
                || list.stream().anyMatch(id -> !(id instanceof String s) || s.isEmpty() || s.length() > 36)) {
            return error(400, "invalid_request");
        }
        List<Map<String, String>> results = new ArrayList<>(list.size());
        // Keycloak's batch mode, as users/bulk: nothing flushed before the transaction ends.
        EntityManagers.runInBatch(session, () -> {
            for (Object id : list) {
                UserModel user = session.users().getUserById(realm, (String) id);
                String outcome = user == null ? "missing" : user.isEnabled() ? "disabled" : "unchanged";
                if ("disabled".equals(outcome)) {
                    user.setEnabled(false);
                }
                results.add(Map.of("id", (String) id, "outcome", outcome));
            }
        }, true);
        return Response.ok(Map.of("results", results)).type(MediaType.APPLICATION_JSON).build();
    }

    /** The realm's hash for a new password, whatever its policy says of the password itself. */
    private PasswordCredentialModel hash(RealmModel realm, String password) {
        PasswordPolicy policy = realm.getPasswordPolicy();
        PasswordHashProvider hash = session.getProvider(PasswordHashProvider.class, policy.getHashAlgorithm());
        if (hash == null) {
            hash = session.getProvider(PasswordHashProvider.class, "argon2");
        }
        return hash.encodedCredential(password, policy.getHashIterations());
    }

    /** The user an authorised caller's well-formed request is about; any other case answers at once. */
    private UserModel target(RealmModel realm, String id, boolean wellFormed) {
        Response refused = authorise(realm);
        if (refused != null) {
            throw new WebApplicationException(refused);
        }
        if (!wellFormed) {
            throw new WebApplicationException(error(400, "invalid_request"));
        }
        UserModel user = session.users().getUserById(realm, id);
        if (user == null) {
            throw new WebApplicationException(error(404, "user_not_found"));
        }
        return user;
    }

    /** Keycloak's security headers want a media type on every answer, errors included. */
    private static Response error(int status, String code) {
        return Response.status(status).type(MediaType.APPLICATION_JSON).entity(Map.of("error", code)).build();
    }

    private Response authorise(RealmModel realm) {
        AuthenticationManager.AuthResult auth = new AppAuthManager.BearerTokenAuthenticator(session).authenticate();
        if (auth == null) {
            return error(401, "unauthorized");
        }
        String serviceClientId = realm.getAttribute(SERVICE_CLIENT_ATTRIBUTE);
        ClientModel service = serviceClientId == null || serviceClientId.isEmpty()
                ? null : realm.getClientByClientId(serviceClientId);
        ClientModel management = realm.getClientByClientId("realm-management");
        RoleModel manageUsers = management == null ? null : management.getRole("manage-users");
        UserModel caller = auth.getUser();
        boolean theService = service != null && caller != null
                && service.getId().equals(caller.getServiceAccountClientLink())
                && auth.getClient() != null && service.getId().equals(auth.getClient().getId());
        if (!theService || manageUsers == null || !caller.hasRole(manageUsers)) {
            if (service == null) {
                LOG.warnf("legacy-migration: realm %s names no service client in its %s attribute (run the "
                        + "bootstrap); every caller is refused", realm.getName(), SERVICE_CLIENT_ATTRIBUTE);
            }
            LOG.warnf("legacy-migration: refused a caller that is not the service's account (client %s)",
                    auth.getClient() == null ? "?" : auth.getClient().getClientId());
            return error(403, "forbidden");
        }
        return null;
    }
}
