package cn.identity.keycloak;

import java.time.Instant;
import java.time.temporal.ChronoUnit;

import org.keycloak.models.UserModel;

/**
 * The migration state Keycloak shows for an imported Kii user: read-only attributes (the realm's
 * user profile gives admins view, nobody edit), so they are written here, in-process, never
 * through the Admin API. The service's legacy store holds the same state; both move together.
 */
final class MigrationState {

    static final String KII_USER_ID = "kii_user_id";
    static final String STATE = "migration_state";
    static final String CHANGED_AT = "migration_state_changed_at";
    static final String MIGRATED = "migrated";

    private MigrationState() {
    }

    static boolean isKiiUser(UserModel user) {
        String kii = user.getFirstAttribute(KII_USER_ID);
        return kii != null && !kii.isEmpty();
    }

    /** Marks a Kii user migrated (Keycloak holds their password now); false if nothing changed. */
    static boolean markMigrated(UserModel user) {
        return isKiiUser(user) && set(user, MIGRATED);
    }

    /** Sets the state and its time; a migrated user stays migrated; false if nothing changed. */
    static boolean set(UserModel user, String state) {
        String current = user.getFirstAttribute(STATE);
        if (state.equals(current) || MIGRATED.equals(current)) {
            return false;
        }
        user.setSingleAttribute(STATE, state);
        user.setSingleAttribute(CHANGED_AT, Instant.now().truncatedTo(ChronoUnit.SECONDS).toString());
        return true;
    }
}
