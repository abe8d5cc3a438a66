package cn.identity.keycloak;

import org.keycloak.Config;
import org.keycloak.events.EventListenerProvider;
import org.keycloak.events.EventListenerProviderFactory;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakSessionFactory;

/** The realm's "legacy-migration-state" event listener (set by `identity keycloak bootstrap`). */
public class MigrationStateListenerFactory implements EventListenerProviderFactory {

    public static final String ID = "legacy-migration-state";

    @Override
    public EventListenerProvider create(KeycloakSession session) {
        return new MigrationStateListener(session);
    }

    @Override
    public void init(Config.Scope config) {
    }

    @Override
    public void postInit(KeycloakSessionFactory factory) {
    }

    @Override
    public void close() {
    }

    @Override
    public String getId() {
        return ID;
    }
}
