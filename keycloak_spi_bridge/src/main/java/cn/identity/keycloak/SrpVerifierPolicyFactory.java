package cn.identity.keycloak;

import org.keycloak.Config;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakSessionFactory;
import org.keycloak.policy.PasswordPolicyProvider;
import org.keycloak.policy.PasswordPolicyProviderFactory;

/** Registers {@link SrpVerifierPolicy} as the password policy {@code srpVerifier} (no value). */
public class SrpVerifierPolicyFactory implements PasswordPolicyProviderFactory {

    private static final SrpVerifierPolicy POLICY = new SrpVerifierPolicy();

    @Override
    public PasswordPolicyProvider create(KeycloakSession session) {
        return POLICY;
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
        return SrpVerifierPolicy.ID;
    }

    @Override
    public String getDisplayName() {
        return "SRP verifier (identity service)";
    }

    @Override
    public String getConfigType() {
        return null;
    }

    @Override
    public String getDefaultConfigValue() {
        return null;
    }

    @Override
    public boolean isMultiplSupported() {
        return false;
    }
}
