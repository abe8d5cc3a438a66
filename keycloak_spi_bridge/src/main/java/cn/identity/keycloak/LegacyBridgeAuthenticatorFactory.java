package cn.identity.keycloak;

import java.util.List;

import org.keycloak.Config;
import org.keycloak.authentication.Authenticator;
import org.keycloak.authentication.AuthenticatorFactory;
import org.keycloak.models.AuthenticationExecutionModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakSessionFactory;
import org.keycloak.models.credential.PasswordCredentialModel;
import org.keycloak.provider.ProviderConfigProperty;

/** Registers {@link LegacyBridgeAuthenticator}; `identity keycloak bootstrap` puts it in the browser flow. */
public class LegacyBridgeAuthenticatorFactory implements AuthenticatorFactory {

    public static final String PROVIDER_ID = "legacy-bridge-password-form";
    private static final LegacyBridgeAuthenticator SINGLETON = new LegacyBridgeAuthenticator();

    @Override
    public String getId() {
        return PROVIDER_ID;
    }

    @Override
    public Authenticator create(KeycloakSession session) {
        return SINGLETON;
    }

    @Override
    public String getDisplayType() {
        return "Username Password Form with legacy (Kii) passwords";
    }

    @Override
    public String getReferenceCategory() {
        return PasswordCredentialModel.TYPE;
    }

    @Override
    public boolean isConfigurable() {
        return true;
    }

    @Override
    public AuthenticationExecutionModel.Requirement[] getRequirementChoices() {
        return new AuthenticationExecutionModel.Requirement[] {AuthenticationExecutionModel.Requirement.REQUIRED};
    }

    @Override
    public boolean isUserSetupAllowed() {
        return false;
    }

    @Override
    public String getHelpText() {
        return "Validates a username and password; for a user without a password yet, asks the identity "
                + "service's bridge about the legacy password.";
    }

    @Override
    public List<ProviderConfigProperty> getConfigProperties() {
        ProviderConfigProperty url = new ProviderConfigProperty(LegacyBridgeAuthenticator.CONFIG_URL,
                "Bridge URL", "Base URL of the service's bridge, e.g. http://127.0.0.1:8000/bridge/v1",
                ProviderConfigProperty.STRING_TYPE, null);
        ProviderConfigProperty timeout = new ProviderConfigProperty(LegacyBridgeAuthenticator.CONFIG_TIMEOUT_MS,
                "Timeout (ms)", "How long a login waits for the bridge", ProviderConfigProperty.STRING_TYPE, "2500");
        return List.of(url, timeout);
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
}
