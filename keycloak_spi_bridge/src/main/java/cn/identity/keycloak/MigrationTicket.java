package cn.identity.keycloak;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.Map;

import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.SingleUseObjectProvider;
import org.keycloak.models.UserModel;

/**
 * A first-login migration ticket: proof, for one token request, that the service has just checked
 * the user's legacy password and Keycloak has just stored it. Without it the service's next call,
 * the password grant, would make Keycloak check the password it hashed a moment before, a second
 * argon2 run on the user's first sign-in (docs/sign-in.md).
 *
 * 256 random bits, valid for {@link #LIFESPAN_SECONDS} seconds, for one token request of that user
 * in that realm by that client, once: it lives in Keycloak's single-use store (shared by the
 * cluster) under its SHA-256, so the store never holds a usable ticket. The expiry is checked
 * here too, not left to the store's lifespan alone.
 */
final class MigrationTicket {

    static final String PARAMETER = "migration_ticket";
    static final long LIFESPAN_SECONDS = 30;
    private static final String PREFIX = "legacy-migration-ticket.";
    private static final SecureRandom RANDOM = new SecureRandom();

    private MigrationTicket() {
    }

    /** What a ticket stands for: refused, the password, or the password and a one-time code. */
    enum Redemption { REFUSED, PASSWORD, PASSWORD_AND_CODE }

    static String mint(KeycloakSession session, RealmModel realm, UserModel user, String clientId) {
        return mint(session, realm, user, clientId, false);
    }

    /** With {@code codeChecked}, the service has also checked the user's one-time code in this sign-in. */
    static String mint(KeycloakSession session, RealmModel realm, UserModel user, String clientId,
            boolean codeChecked) {
        byte[] bytes = new byte[32];
        RANDOM.nextBytes(bytes);
        String ticket = Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
        long expires = System.currentTimeMillis() + LIFESPAN_SECONDS * 1000;
        session.singleUseObjects().put(key(ticket), LIFESPAN_SECONDS, Map.of("realm", realm.getId(),
                "user", user.getId(), "client", clientId, "exp", Long.toString(expires), "code", Boolean.toString(codeChecked)));
        return ticket;
    }

    /** Not REFUSED once for a ticket minted for this user, realm and client within its lifespan. */
    static Redemption redeem(KeycloakSession session, RealmModel realm, UserModel user, String clientId,
            String ticket) {
        if (ticket == null || ticket.isEmpty() || ticket.length() > 128 || user == null || clientId == null) {
            return Redemption.REFUSED;
        }
        SingleUseObjectProvider store = session.singleUseObjects();
        Map<String, String> notes = store.remove(key(ticket));  // gone whatever follows: one attempt per ticket
        if (notes == null) {
            return Redemption.REFUSED;
        }
        long expires;
        try {
            expires = Long.parseLong(notes.getOrDefault("exp", "0"));
        } catch (NumberFormatException malformed) {
            return Redemption.REFUSED;
        }
        boolean valid = System.currentTimeMillis() < expires && realm.getId().equals(notes.get("realm"))
                && user.getId().equals(notes.get("user")) && clientId.equals(notes.get("client"));
        if (!valid) {
            return Redemption.REFUSED;
        }
        return "true".equals(notes.get("code")) ? Redemption.PASSWORD_AND_CODE : Redemption.PASSWORD;
    }

    private static String key(String ticket) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(ticket.getBytes(StandardCharsets.UTF_8));
            return PREFIX + Base64.getUrlEncoder().withoutPadding().encodeToString(digest);
        } catch (NoSuchAlgorithmException impossible) {
            throw new IllegalStateException(impossible);
        }
    }
}
