package cn.identity.keycloak;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;

import org.jboss.logging.Logger;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.policy.PasswordPolicyProvider;
import org.keycloak.policy.PolicyError;
import org.keycloak.util.JsonSerialization;

/**
 * The realm's password policy {@code srpVerifier}: never refuses a password. Where Keycloak validates
 * a new password (its login page's reset and update-password pages, the console's "Reset password",
 * the Admin API), it hands the password to the service's bridge ({@code POST .../password-set}, the
 * shared secret), which keeps the user's SRP verifier, so an app's SRP sign-in works with a password
 * the service never saw. Last in the realm's policy, it runs only once every other rule has passed.
 * The bridge down or slow costs nothing but that verifier (the app falls back to USER_PASSWORD_AUTH,
 * docs/sign-in.md); the password is never logged.
 */
public class SrpVerifierPolicy implements PasswordPolicyProvider {

    static final String ID = "srpVerifier";
    static final String BRIDGE_URL_ATTRIBUTE = "legacyBridgeUrl";
    private static final Logger LOG = Logger.getLogger(SrpVerifierPolicy.class);
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

    @Override
    public PolicyError validate(RealmModel realm, UserModel user, String password) {
        if (user == null || password == null || password.isEmpty()) {
            return null;
        }
        String url = realm.getAttribute(BRIDGE_URL_ATTRIBUTE);
        String secret = System.getenv(LegacyBridgeAuthenticator.SECRET_ENV);
        if (url == null || url.isEmpty() || secret == null || secret.isEmpty()) {
            LOG.warnf("srpVerifier: no bridge (realm attribute %s, %s): no SRP verifier kept",
                    BRIDGE_URL_ATTRIBUTE, LegacyBridgeAuthenticator.SECRET_ENV);
            return null;
        }
        try {
            String body = JsonSerialization.writeValueAsString(Map.of("user_id", user.getId(),
                    "username", user.getUsername(), "password", password));
            HttpRequest request = HttpRequest.newBuilder(URI.create(url.replaceAll("/+$", "") + "/password-set"))
                    .timeout(Duration.ofMillis(2500))
                    .header("Authorization", "Bearer " + secret)
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(body))
                    .build();
            HttpResponse<Void> response = HTTP.send(request, HttpResponse.BodyHandlers.discarding());
            if (response.statusCode() != 204) {
                LOG.warnf("srpVerifier: the bridge answered HTTP %d", response.statusCode());
            }
        } catch (Exception e) {
            LOG.warnf("srpVerifier: bridge unreachable: %s", e.getClass().getSimpleName());
        }
        return null;
    }

    @Override
    public PolicyError validate(String user, String password) {
        return null;  // without a user there is no verifier to keep
    }

    @Override
    public Object parseConfig(String value) {
        return null;
    }

    @Override
    public void close() {
    }
}
