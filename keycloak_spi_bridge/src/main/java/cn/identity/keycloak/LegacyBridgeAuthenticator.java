package cn.identity.keycloak;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;

import jakarta.ws.rs.core.MultivaluedMap;
import jakarta.ws.rs.core.Response;

import org.jboss.logging.Logger;
import org.keycloak.authentication.AuthenticationFlowContext;
import org.keycloak.authentication.AuthenticationFlowError;
import org.keycloak.events.Errors;
import org.keycloak.authentication.authenticators.browser.UsernamePasswordForm;
import org.keycloak.models.AuthenticatorConfigModel;
import org.keycloak.models.UserModel;
import org.keycloak.models.credential.PasswordCredentialModel;
import org.keycloak.util.JsonSerialization;

/**
 * Keycloak's username/password form, plus the legacy (Kii) password of a user who has no
 * Keycloak password yet: the form asks the service's bridge, which checks the legacy hash and,
 * when it is right, gives Keycloak the password (Admin API) and forgets the hash, the same
 * first-login migration as the service's JSON API. Every failure (wrong password, bridge down
 * or slow) takes the ordinary path of the form, brute-force detection included.
 */
public class LegacyBridgeAuthenticator extends UsernamePasswordForm {

    private static final Logger LOG = Logger.getLogger(LegacyBridgeAuthenticator.class);
    static final String CONFIG_URL = "bridge.url";
    static final String CONFIG_TIMEOUT_MS = "bridge.timeout.ms";
    static final String SECRET_ENV = "IDENTITY_BRIDGE_SECRET";

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

    /** The bridge's answer: the legacy password was right, the user must reset it first, or anything else. */
    enum Answer { VALID, RESET_REQUIRED, NO }

    static final String RESET_REQUIRED_MESSAGE = "kiiResetRequired";

    @Override
    public boolean validatePassword(AuthenticationFlowContext context, UserModel user,
                                    MultivaluedMap<String, String> inputData, boolean clearUser) {
        if (user != null && user.isEnabled()
                && !user.credentialManager().isConfiguredFor(PasswordCredentialModel.TYPE)) {
            String password = inputData.getFirst("password");
            if (password != null && !password.isEmpty()) {
                // By id: the bridge finds the legacy user this very account was imported as, never
                // another one whose email or phone this account's username happens to be.
                Answer answer = askBridge(context, user.getId(), password);
                if (answer == Answer.VALID) {
                    return true;
                }
                if (answer == Answer.RESET_REQUIRED) {
                    // A Kii user without a usable password: no password can work, so say where to go
                    // (the theme's text points to "forgot password"). Any password gets this answer,
                    // so it tells a guesser nothing.
                    context.getEvent().user(user).error(Errors.INVALID_USER_CREDENTIALS);
                    Response challenge = context.form().setAttribute("username", user.getUsername())
                            .setError(RESET_REQUIRED_MESSAGE).createLoginUsernamePassword();
                    context.failureChallenge(AuthenticationFlowError.INVALID_CREDENTIALS, challenge);
                    return false;
                }
            }
        }
        return super.validatePassword(context, user, inputData, clearUser);
    }

    Answer askBridge(AuthenticationFlowContext context, String userId, String password) {
        AuthenticatorConfigModel config = context.getAuthenticatorConfig();
        String url = config == null ? null : config.getConfig().get(CONFIG_URL);
        long timeoutMs = parseTimeout(config == null ? null : config.getConfig().get(CONFIG_TIMEOUT_MS));
        return answer(http, url, System.getenv(SECRET_ENV), timeoutMs, userId, password);
    }

    /** True only when the bridge answers 200 {"valid": true}; anything else (down, slow, refused) is false. */
    static boolean ask(HttpClient http, String url, String secret, long timeoutMs, String userId, String password) {
        return answer(http, url, secret, timeoutMs, userId, password) == Answer.VALID;
    }

    static Answer answer(HttpClient http, String url, String secret, long timeoutMs, String userId,
                         String password) {
        if (url == null || url.isEmpty() || secret == null || secret.isEmpty()) {
            LOG.warn("legacy bridge not configured: url in the execution config, secret in " + SECRET_ENV);
            return Answer.NO;
        }
        try {
            String body = JsonSerialization.writeValueAsString(Map.of("user_id", userId, "password", password));
            HttpRequest request = HttpRequest.newBuilder(URI.create(url.replaceAll("/+$", "") + "/verify"))
                    .timeout(Duration.ofMillis(timeoutMs))
                    .header("Authorization", "Bearer " + secret)
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(body))
                    .build();
            HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
            if (response.statusCode() == 200) {
                Map<?, ?> answer = JsonSerialization.readValue(response.body(), Map.class);
                if (Boolean.TRUE.equals(answer.get("valid"))) {
                    return Answer.VALID;
                }
                return "reset_required".equals(answer.get("reason")) ? Answer.RESET_REQUIRED : Answer.NO;
            }
            if (response.statusCode() != 404) {
                LOG.warnf("legacy bridge answered HTTP %d", response.statusCode());
            }
            return Answer.NO;
        } catch (Exception e) {
            // Down or slow: the login fails as a wrong password would, within the timeout.
            LOG.warnf("legacy bridge unreachable: %s", e.getClass().getSimpleName());
            return Answer.NO;
        }
    }

    static long parseTimeout(String value) {
        try {
            long parsed = value == null ? 2500 : Long.parseLong(value.trim());
            return Math.max(100, Math.min(parsed, 2900));  // below Keycloak's own patience
        } catch (NumberFormatException e) {
            return 2500;
        }
    }
}
