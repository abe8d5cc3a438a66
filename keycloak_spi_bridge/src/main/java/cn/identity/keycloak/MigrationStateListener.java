package cn.identity.keycloak;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.keycloak.events.Event;
import org.keycloak.events.EventListenerProvider;
import org.keycloak.events.EventType;
import org.keycloak.events.admin.AdminEvent;
import org.keycloak.events.admin.OperationType;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;

/**
 * Keeps a Kii user's migration state true when their password changes anywhere else than the
 * first-login call: the service's password reset (Admin API reset-password), Keycloak's own
 * "forgot password" and update-password pages. Runs in the request's transaction, so the state
 * changes with the password or not at all; and there, after Keycloak's write, it makes sure a
 * first-login migration at the same moment leaves no second password ({@link PasswordWrites}).
 */
public class MigrationStateListener implements EventListenerProvider {

    private static final Pattern RESET_PASSWORD = Pattern.compile("^users/([0-9a-fA-F-]{36})/reset-password$");
    private final KeycloakSession session;

    public MigrationStateListener(KeycloakSession session) {
        this.session = session;
    }

    @Override
    public void onEvent(Event event) {
        if (event.getError() != null || event.getUserId() == null) {
            return;
        }
        EventType type = event.getType();
        boolean password = type == EventType.UPDATE_PASSWORD
                || (type == EventType.UPDATE_CREDENTIAL && event.getDetails() != null
                    && "password".equals(event.getDetails().get("credential_type")));
        if (password) {
            mark(event.getRealmId(), event.getUserId());
        }
    }

    @Override
    public void onEvent(AdminEvent event, boolean includeRepresentation) {
        if (event.getOperationType() != OperationType.ACTION || event.getResourcePath() == null) {
            return;
        }
        Matcher match = RESET_PASSWORD.matcher(event.getResourcePath());
        if (match.matches()) {
            mark(event.getRealmId(), match.group(1));
        }
    }

    private void mark(String realmId, String userId) {
        RealmModel realm = session.realms().getRealm(realmId);
        UserModel user = realm == null ? null : session.users().getUserById(realm, userId);
        if (user != null) {
            PasswordWrites.keepKeycloaksWrite(session, user);
            MigrationState.markMigrated(user);
        }
    }

    @Override
    public void close() {
    }
}
