package cn.identity.keycloak;

import java.sql.Clob;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import jakarta.persistence.EntityManager;
import jakarta.persistence.Query;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.keycloak.models.RealmModel;
import org.keycloak.models.credential.PasswordCredentialModel;

/**
 * A page of a realm's users in id order with only what {@code identity migration verify} compares:
 * the service's bulk read of every user, where the Admin API's full representations are far too slow.
 * Straight SQL, no UserModel: the page's users, then their attributes and which of them have a
 * password, one statement each over the page's key range. Keyset paging ({@code after} the last id of the page before) on
 * the primary key keeps every page as cheap as the first at any depth. A walk may stop at an id ({@code to},
 * inclusive), so that walks over disjoint ranges of ids read the realm side by side. Service accounts are left out.
 */
final class CompactUsers {

    static final int MAX_PAGE = 10000;
    // The page's users' rows by the page's own key range, not by a list of its ids: two bound values
    // instead of thousands, one statement text for every page (parsed once, not per page). A service
    // account inside the range is skipped when the rows are read.
    // The values from the provider's index by user alone (identity-changelog.xml); the few values too long
    // for VALUE (Keycloak keeps them in LONG_VALUE, VALUE null) from their rows.
    private static final String ATTRIBUTES = "SELECT a.USER_ID, a.NAME, a.VALUE FROM USER_ENTITY u%s"
            + " JOIN USER_ATTRIBUTE a%s ON a.USER_ID = u.ID WHERE u.REALM_ID = ?1 AND u.ID > ?2 AND u.ID <= ?3"
            + " AND a.VALUE IS NOT NULL";
    private static final String LONG_VALUES = "SELECT a.USER_ID, a.NAME, a.LONG_VALUE FROM USER_ENTITY u%s"
            + " JOIN USER_ATTRIBUTE a%s ON a.USER_ID = u.ID WHERE u.REALM_ID = ?1 AND u.ID > ?2 AND u.ID <= ?3"
            + " AND a.VALUE IS NULL";
    private static final String PASSWORDS = "SELECT DISTINCT c.USER_ID FROM USER_ENTITY u%s"
            + " JOIN CREDENTIAL c ON c.USER_ID = u.ID WHERE u.REALM_ID = ?1 AND u.ID > ?2 AND u.ID <= ?3"
            + " AND c.TYPE = ?4";
    // Keycloak's own JSON leaves null map values out: a user without an email would lose the field.
    private static final ObjectMapper JSON = new ObjectMapper();

    private final EntityManager entities;
    private final String realmId;
    private final String after;
    private final String to;
    private final int max;
    private final String page;
    private final String attributes;
    private final String longValues;
    private final String passwords;

    CompactUsers(EntityManager entities, boolean mysql, RealmModel realm, String after, String to, int max) {
        this.entities = entities;
        this.realmId = realm.getId();
        this.after = after == null ? "" : after;
        this.to = to;
        this.max = max;
        // Left to itself, MariaDB may take the realm's service-account index by ref and step over every
        // user before `after`: each page would cost more than the one before.
        this.page = "SELECT u.ID, u.USERNAME, u.EMAIL, u.ENABLED, u.EMAIL_VERIFIED FROM USER_ENTITY u"
                + (mysql ? " FORCE INDEX (PRIMARY)" : "")
                + " WHERE u.REALM_ID = ?1 AND u.SERVICE_ACCOUNT_CLIENT_LINK IS NULL AND u.ID > ?2"
                + (to == null ? "" : " AND u.ID <= ?3") + " ORDER BY u.ID LIMIT " + max;
        String primary = mysql ? " FORCE INDEX (PRIMARY)" : "";
        // Left to itself, MariaDB reads the long values through Keycloak's index by user, and so every row
        // of the page, to find the few whose VALUE is null: the provider's index holds VALUE.
        String byUser = mysql ? " FORCE INDEX (IDX_USER_ATTRIBUTE_BY_USER)" : "";
        this.attributes = String.format(ATTRIBUTES, primary, byUser);
        this.longValues = String.format(LONG_VALUES, primary, byUser);
        this.passwords = String.format(PASSWORDS, primary);
    }

    private Query page(boolean explain) {
        Query query = entities.createNativeQuery((explain ? "EXPLAIN FORMAT=JSON " : "") + page)
                .setParameter(1, realmId)
                .setParameter(2, after);
        return to == null ? query : query.setParameter(3, to);
    }

    /** The page: {@code users}, and {@code next} (the last id) when the page is full. */
    Map<String, Object> page() {
        List<?> rows = page(false).getResultList();
        Map<String, Map<String, Object>> users = new LinkedHashMap<>();
        for (Object row : rows) {
            Object[] columns = (Object[]) row;
            Map<String, Object> user = new LinkedHashMap<>();
            user.put("id", columns[0]);
            user.put("username", columns[1]);
            user.put("email", columns[2]);
            user.put("enabled", flag(columns[3]));
            user.put("emailVerified", flag(columns[4]));
            user.put("password", false);
            user.put("attributes", new LinkedHashMap<String, List<String>>());
            users.put((String) columns[0], user);
        }
        if (!users.isEmpty()) {
            String last = (String) ((Object[]) rows.get(rows.size() - 1))[0];
            attributes(users, last);
            passwords(users, last);
        }
        Map<String, Object> answer = new LinkedHashMap<>();
        answer.put("users", new ArrayList<>(users.values()));
        if (rows.size() == max) {
            answer.put("next", ((Object[]) rows.get(rows.size() - 1))[0]);
        }
        return answer;
    }

    /** {@link #page} as JSON, a null email kept. */
    byte[] json() {
        try {
            return JSON.writeValueAsBytes(page());
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("the page cannot be written as JSON", e);
        }
    }

    private void attributes(Map<String, Map<String, Object>> users, String last) {
        for (String sql : List.of(attributes, longValues)) {
            for (Object row : ranged(sql, last, false).getResultList()) {
                Object[] columns = (Object[]) row;
                add(users.get((String) columns[0]), (String) columns[1], text(columns[2]));
            }
        }
    }

    @SuppressWarnings("unchecked")
    private static void add(Map<String, Object> user, String name, String value) {
        if (user != null) {   // null: a service account inside the range
            ((Map<String, List<String>>) user.get("attributes")).computeIfAbsent(name, n -> new ArrayList<>()).add(value);
        }
    }

    private void passwords(Map<String, Map<String, Object>> users, String last) {
        for (Object id : ranged(passwords, last, false).setParameter(4, PasswordCredentialModel.TYPE).getResultList()) {
            Map<String, Object> user = users.get((String) id);
            if (user != null) {
                user.put("password", true);
            }
        }
    }

    /** `sql` over the page's key range, after `after` up to and including `last`. */
    private Query ranged(String sql, String last, boolean explain) {
        return entities.createNativeQuery((explain ? "EXPLAIN FORMAT=JSON " : "") + sql)
                .setParameter(1, realmId)
                .setParameter(2, after)
                .setParameter(3, last);
    }

    /** Booleans as each database's driver hands them back. */
    private static boolean flag(Object value) {
        if (value instanceof Boolean b) {
            return b;
        }
        if (value instanceof Number n) {
            return n.intValue() != 0;
        }
        if (value instanceof byte[] bytes) {
            return bytes.length > 0 && bytes[0] != 0;
        }
        return value != null && ("1".equals(value.toString()) || "true".equalsIgnoreCase(value.toString()));
    }

    /** A VALUE, or a LONG_VALUE: a string on MariaDB, a CLOB on others (H2). */
    private static String text(Object value) {
        if (value instanceof Clob clob) {
            try {
                return clob.getSubString(1, (int) clob.length());
            } catch (SQLException e) {
                throw new IllegalStateException("an attribute's long value cannot be read", e);
            }
        }
        return value == null ? null : value.toString();
    }

    /**
     * The database's plan (MariaDB/MySQL's EXPLAIN FORMAT=JSON) of each statement the page runs, by name:
     * {@code page}, and for the page's users {@code attributes}, {@code long_values} and {@code passwords}.
     */
    Map<String, String> plans() {
        Map<String, String> plans = new LinkedHashMap<>();
        plans.put("page", plan(page(true)));
        List<?> rows = page(false).getResultList();
        if (!rows.isEmpty()) {
            String last = (String) ((Object[]) rows.get(rows.size() - 1))[0];
            plans.put("attributes", plan(ranged(attributes, last, true)));
            plans.put("long_values", plan(ranged(longValues, last, true)));
            plans.put("passwords", plan(ranged(passwords, last, true).setParameter(4, PasswordCredentialModel.TYPE)));
        }
        return plans;
    }

    private static String plan(Query explain) {
        Object answer = explain.getSingleResult();
        return answer instanceof Object[] row ? String.valueOf(row[0]) : String.valueOf(answer);
    }
}
