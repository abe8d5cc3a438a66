package cn.identity.keycloak;

import java.util.List;

import org.keycloak.Config;
import org.keycloak.connections.jpa.entityprovider.JpaEntityProvider;
import org.keycloak.connections.jpa.entityprovider.JpaEntityProviderFactory;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakSessionFactory;

/**
 * The provider's additions to Keycloak's schema, as Keycloak applies its own: a Liquibase changelog
 * ({@code META-INF/identity-changelog.xml}) run when the server starts, under Liquibase's lock, once per
 * database (recorded in a changelog table of its own). No entities: only indexes that the provider's
 * straight SQL reads ({@link CompactUsers}).
 */
public class IdentitySchema implements JpaEntityProviderFactory, JpaEntityProvider {

    public static final String ID = "identity-schema";

    @Override
    public List<Class<?>> getEntities() {
        return List.of();
    }

    @Override
    public String getChangelogLocation() {
        return "META-INF/identity-changelog.xml";
    }

    @Override
    public String getFactoryId() {
        return ID;
    }

    @Override
    public JpaEntityProvider create(KeycloakSession session) {
        return this;
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
