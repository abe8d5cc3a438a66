package cn.identity.keycloak;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

import jakarta.persistence.Query;

import org.keycloak.connections.jpa.support.EntityManagers;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.models.UserProvider;

/**
 * The importer's write of a batch of Kii users ({@code POST .../users/bulk}), through Keycloak's own
 * user model in the request's one transaction: a user made here is what the Admin API's
 * {@code POST /users} makes (default roles, groups and required actions; the user cache and the
 * other nodes told), with the importer's id, and the read-only migration attributes the Admin API
 * cannot write. Each user is answered created, updated, unchanged or refused with a reason; a
 * refused user changes nothing, and the batch goes on. The same batch twice: unchanged.
 *
 * <p>A user is a map of the fields the importer validated: {@code id}, {@code username},
 * {@code email}, {@code emailVerified}, {@code firstName}, {@code lastName}, {@code enabled},
 * {@code attributes} (the importer's own, which replace those it owns: {@link #owned}),
 * {@code kii_user_id}, {@code migration_state}, {@code requiredActions} and {@code createdTimestamp}
 * (on creation only). An email or name not given leaves the user's as it is (a user may have
 * given one here since Kii's export).
 */
final class BulkUsers {

    static final int MAX_BATCH = 1000;
    /** Attributes the importer owns; others on a user (set by the service or an admin) are kept. */
    private static final Set<String> OWNED = Set.of("phone_number", "phone_number_verified", "locale", "name");
    private static final String OWNED_PREFIX = "custom.";

    private final KeycloakSession session;
    private final RealmModel realm;
    private final UserProvider users;
    // Who holds the batch's usernames and emails already (value in lower case -> user id).
    private Map<String, String> byUsername = Map.of();
    private Map<String, String> byEmail = Map.of();

    BulkUsers(KeycloakSession session, RealmModel realm) {
        this.session = session;
        this.realm = realm;
        this.users = session.users();
    }

    static boolean owned(String name) {
        return OWNED.contains(name) || name.startsWith(OWNED_PREFIX);
    }

    /**
     * One answer per user, in the batch's order. Written in Keycloak's own batch mode (what its realm
     * import uses): nothing is flushed before the transaction ends, so each user costs the same
     * however large the batch; the identifiers the batch itself claims are therefore checked here.
     */
    List<Map<String, Object>> write(List<Wanted> batch) {
        List<Map<String, Object>> answers = new ArrayList<>(batch.size());
        Map<String, String> claimed = new HashMap<>();
        EntityManagers.runInBatch(session, () -> {
            Map<String, String> realmOf = rows(lookup("ids", batch, false));
            byUsername = rows(lookup("usernames", batch, false));
            byEmail = rows(lookup("emails", batch, false));
            for (Wanted wanted : batch) {
                String holderRealm = realmOf.get(wanted.id().toLowerCase(Locale.ROOT));
                if (holderRealm != null && !holderRealm.equals(realm.getId())) {
                    answers.add(answer(wanted.id(), "refused:id_taken"));
                    continue;
                }
                UserModel user = holderRealm != null ? users.getUserById(realm, wanted.id()) : null;
                answers.add(answer(wanted.id(), write(user, wanted, claimed)));
            }
        }, true);
        return answers;
    }

    /**
     * A batch's lookups (who exists; who holds its usernames; its emails): each answered by a unique
     * key, so each costs the same however many users there are. An id is unique across realms.
     * With unique emails Keycloak keeps the lower-cased email in EMAIL_CONSTRAINT, under the realm's
     * unique key (the plain EMAIL index alone made MariaDB scan the realm's users); with duplicates
     * allowed no email is refused, so there is nothing to look up.
     */
    static final List<String> LOOKUPS = List.of("ids", "usernames", "emails");

    private Query lookup(String name, List<Wanted> batch, boolean explain) {
        return switch (name) {
            case "ids" -> in("SELECT u.ID, u.REALM_ID FROM USER_ENTITY u WHERE u.ID IN ",
                    batch.stream().map(Wanted::id).toList(), false, explain);
            case "usernames" -> in("SELECT u.USERNAME, u.ID FROM USER_ENTITY u WHERE u.REALM_ID = ?1 AND u.USERNAME IN ",
                    batch.stream().map(w -> w.username().toLowerCase(Locale.ROOT)).toList(), true, explain);
            case "emails" -> realm.isDuplicateEmailsAllowed() ? null
                    : in("SELECT u.EMAIL_CONSTRAINT, u.ID FROM USER_ENTITY u WHERE u.REALM_ID = ?1 AND u.EMAIL_CONSTRAINT IN ",
                    batch.stream().map(Wanted::email).filter(e -> e != null).map(e -> e.toLowerCase(Locale.ROOT)).toList(),
                    true, explain);
            default -> throw new IllegalArgumentException(name);
        };
    }

    /** The statement `sql` (ending in "IN ") for `values`, bound (or its EXPLAIN); null when there are none. */
    private Query in(String sql, List<String> values, boolean inRealm, boolean explain) {
        if (values.isEmpty()) {
            return null;
        }
        int first = inRealm ? 2 : 1;
        StringBuilder in = new StringBuilder(sql).append('(');
        for (int i = 0; i < values.size(); i++) {
            in.append(i == 0 ? "" : ", ").append('?').append(i + first);
        }
        String statement = in.append(')').toString();
        Query query = PasswordWrites.entities(session).createNativeQuery(explain ? "EXPLAIN FORMAT=JSON " + statement : statement);
        if (inRealm) {
            query.setParameter(1, realm.getId());
        }
        for (int i = 0; i < values.size(); i++) {
            query.setParameter(i + first, values.get(i));
        }
        return query;
    }

    /** First column (lower case) -> second, of what the lookup found. */
    private static Map<String, String> rows(Query query) {
        Map<String, String> found = new HashMap<>();
        if (query == null) {
            return found;
        }
        for (Object row : query.getResultList()) {
            Object[] pair = (Object[]) row;
            found.put(String.valueOf(pair[0]).toLowerCase(Locale.ROOT), String.valueOf(pair[1]));
        }
        return found;
    }

    /** MariaDB/MySQL's EXPLAIN FORMAT=JSON of each lookup this batch makes (the same statements, bound). */
    Map<String, String> plans(List<Wanted> batch) {
        Map<String, String> plans = new LinkedHashMap<>();
        for (String name : LOOKUPS) {
            Query query = lookup(name, batch, true);
            if (query != null) {
                Object answer = query.getSingleResult();
                plans.put(name, answer instanceof Object[] row ? String.valueOf(row[0]) : String.valueOf(answer));
            }
        }
        return plans;
    }

    private String write(UserModel user, Wanted wanted, Map<String, String> claimed) {
        String refused = refusal(user, wanted);
        if (refused == null) {
            refused = claim(claimed, "username:" + wanted.username(), wanted.id(), "username_taken");
        }
        if (refused == null && wanted.email() != null && !realm.isDuplicateEmailsAllowed()) {
            refused = claim(claimed, "email:" + wanted.email(), wanted.id(), "email_taken");
        }
        if (refused != null) {
            return "refused:" + refused;
        }
        if (user == null) {
            user = users.addUser(realm, wanted.id(), wanted.username(), true, true);
            if (wanted.createdTimestamp() != null) {
                user.setCreatedTimestamp(wanted.createdTimestamp());
            }
            apply(user, wanted);
            return "created";
        }
        return apply(user, wanted) ? "updated" : "unchanged";
    }

    /** A username or email another user of this batch took already: the reason; null when free. */
    private static String claim(Map<String, String> claimed, String key, String id, String reason) {
        String holder = claimed.putIfAbsent(key.toLowerCase(Locale.ROOT), id);
        return holder == null || holder.equals(id) ? null : reason;
    }

    /** Why this user cannot be written as wanted, before anything is: null when it can. */
    private String refusal(UserModel user, Wanted wanted) {
        // Keycloak keeps usernames and emails in lower case.
        String holder = byUsername.get(wanted.username().toLowerCase(Locale.ROOT));
        if (holder != null && !holder.equals(wanted.id())) {
            return "username_taken";
        }
        holder = wanted.email() == null ? null : byEmail.get(wanted.email().toLowerCase(Locale.ROOT));
        if (holder != null && !holder.equals(wanted.id()) && !realm.isDuplicateEmailsAllowed()) {
            return "email_taken";
        }
        String kii = user == null ? null : user.getFirstAttribute(MigrationState.KII_USER_ID);
        if (kii != null && wanted.kiiUserId() != null && !kii.equals(wanted.kiiUserId())) {
            return "kii_user_id_differs";
        }
        return null;
    }

    /** Brings the user to what is wanted; whether anything changed. */
    private boolean apply(UserModel user, Wanted wanted) {
        boolean changed = false;
        if (!wanted.username().equalsIgnoreCase(user.getUsername())) {
            user.setUsername(wanted.username());
            changed = true;
        }
        if (wanted.email() != null && !wanted.email().equalsIgnoreCase(user.getEmail())) {
            user.setEmail(wanted.email());
            changed = true;
        }
        if (wanted.emailVerified() != user.isEmailVerified()) {
            user.setEmailVerified(wanted.emailVerified());
            changed = true;
        }
        if (wanted.firstName() != null && !wanted.firstName().equals(user.getFirstName())) {
            user.setFirstName(wanted.firstName());
            changed = true;
        }
        if (wanted.lastName() != null && !wanted.lastName().equals(user.getLastName())) {
            user.setLastName(wanted.lastName());
            changed = true;
        }
        if (wanted.enabled() != user.isEnabled()) {
            user.setEnabled(wanted.enabled());
            changed = true;
        }
        changed |= attributes(user, wanted.attributes());
        for (String action : wanted.requiredActions()) {
            if (user.getRequiredActionsStream().noneMatch(action::equals)) {
                user.addRequiredAction(action);
                changed = true;
            }
        }
        if (wanted.kiiUserId() != null && user.getFirstAttribute(MigrationState.KII_USER_ID) == null) {
            user.setSingleAttribute(MigrationState.KII_USER_ID, wanted.kiiUserId());
            changed = true;
        }
        if (wanted.migrationState() != null) {
            changed |= MigrationState.set(user, wanted.migrationState());
        }
        return changed;
    }

    private static boolean attributes(UserModel user, Map<String, List<String>> wanted) {
        boolean changed = false;
        Map<String, List<String>> have = user.getAttributes();
        Set<String> gone = new HashSet<>();
        for (String name : have.keySet()) {
            if (owned(name) && !wanted.containsKey(name)) {
                gone.add(name);
            }
        }
        for (String name : gone) {
            user.removeAttribute(name);
            changed = true;
        }
        for (Map.Entry<String, List<String>> entry : wanted.entrySet()) {
            if (!entry.getValue().equals(have.get(entry.getKey()))) {
                user.setAttribute(entry.getKey(), entry.getValue());
                changed = true;
            }
        }
        return changed;
    }

    private static Map<String, Object> answer(String id, String outcome) {
        Map<String, Object> answer = new LinkedHashMap<>();
        answer.put("id", id);
        if (outcome.startsWith("refused:")) {
            answer.put("outcome", "refused");
            answer.put("reason", outcome.substring("refused:".length()));
        } else {
            answer.put("outcome", outcome);
        }
        return answer;
    }

    /** The batch's users; IllegalArgumentException for anything the importer would never send. */
    @SuppressWarnings("unchecked")
    static List<Wanted> parse(Object batch) {
        if (!(batch instanceof List<?> list) || list.isEmpty() || list.size() > MAX_BATCH) {
            throw new IllegalArgumentException("users");
        }
        List<Wanted> parsed = new ArrayList<>(list.size());
        Set<String> ids = new HashSet<>();
        for (Object item : list) {
            if (!(item instanceof Map<?, ?> user)) {
                throw new IllegalArgumentException("user");
            }
            Map<String, List<String>> attributes = new LinkedHashMap<>();
            Object given = user.get("attributes");
            if (given != null) {
                if (!(given instanceof Map<?, ?> map)) {
                    throw new IllegalArgumentException("attributes");
                }
                for (Map.Entry<?, ?> entry : map.entrySet()) {
                    if (!(entry.getKey() instanceof String name) || !owned(name) || name.length() > 255
                            || !(entry.getValue() instanceof List<?> values) || values.isEmpty()
                            || values.stream().anyMatch(v -> !(v instanceof String s) || s.length() > 2048)) {
                        throw new IllegalArgumentException("attribute");
                    }
                    attributes.put(name, (List<String>) entry.getValue());
                }
            }
            Object actions = user.get("requiredActions");
            if (actions != null && (!(actions instanceof List<?> named)
                    || named.stream().anyMatch(a -> !(a instanceof String s) || s.length() > 64))) {
                throw new IllegalArgumentException("requiredActions");
            }
            Object state = user.get("migration_state");
            if (state != null && !"pending".equals(state) && !"reset_required".equals(state)
                    && !MigrationState.MIGRATED.equals(state)) {
                throw new IllegalArgumentException("migration_state");
            }
            Object created = user.get("createdTimestamp");
            Wanted wanted = new Wanted(text(user.get("id"), 36, true), text(user.get("username"), 255, true),
                    text(user.get("email"), 255, false), Boolean.TRUE.equals(user.get("emailVerified")),
                    text(user.get("firstName"), 255, false), text(user.get("lastName"), 255, false),
                    !Boolean.FALSE.equals(user.get("enabled")), attributes,
                    text(user.get("kii_user_id"), 64, false), (String) state,
                    actions == null ? List.of() : (List<String>) actions,
                    created instanceof Number n ? n.longValue() : null);
            if (!ids.add(wanted.id())) {
                throw new IllegalArgumentException("duplicate id");
            }
            parsed.add(wanted);
        }
        return parsed;
    }

    private static String text(Object value, int max, boolean required) {
        if (value == null && !required) {
            return null;
        }
        if (!(value instanceof String s) || s.isEmpty() || s.length() > max) {
            throw new IllegalArgumentException("text");
        }
        return s;
    }

    /** One user of a batch, as the importer sends it (checked by {@link #parse}). */
    record Wanted(String id, String username, String email, boolean emailVerified, String firstName,
                  String lastName, boolean enabled, Map<String, List<String>> attributes, String kiiUserId,
                  String migrationState, List<String> requiredActions, Long createdTimestamp) {
    }
}
