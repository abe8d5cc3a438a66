package cn.identity.keycloak;

import java.sql.Connection;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import jakarta.persistence.EntityManager;
import jakarta.persistence.Query;

import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.models.credential.PasswordCredentialModel;
import org.keycloak.models.utils.ModelToRepresentation;
import org.keycloak.provider.Provider;

/**
 * A page of a realm's users in username order, optionally filtered on one field: Cognito's
 * ListUsers (the service maps its Filter here). Keyset paging ({@code after} the last username of
 * the page before) keeps every page as cheap as the first at any depth, and each filter is written
 * so that one of Keycloak's own indexes serves it: (REALM_ID, USERNAME) for the order and for
 * username, IDX_USER_EMAIL for email, the primary key for sub, IDX_USER_ATTRIBUTE_NAME (NAME,
 * VALUE) for attributes, the membership's key (GROUP_ID, USER_ID) for a group's members
 * (Cognito's ListUsersInGroup: field "group", the group's id). First and last names and the enabled flag have no index in Keycloak's
 * schema: those filters walk the username index. {@link #plan} answers the database's EXPLAIN of the
 * very statement a page runs, so a test can hold each filter to its index.
 */
final class UserPages {

    static final int MAX_PAGE = 5000;
    private static final Map<String, String> COLUMNS = Map.of(
            "username", "u.USERNAME", "email", "u.EMAIL", "given_name", "u.FIRST_NAME",
            "family_name", "u.LAST_NAME", "sub", "u.ID", "status", "u.ENABLED");
    private static final List<String> ATTRIBUTES = List.of("phone_number", "name", "preferred_username");
    /** Filters an index narrows to a few users (the others walk the username index). */
    private static final List<String> SELECTIVE = List.of("email", "sub", "group", "phone_number", "name",
            "preferred_username");
    private static volatile Boolean mysql;

    /** A filter: the field, "eq" or "prefix", and the value; all null for no filter. */
    record Filter(String field, String match, String value) {

        static Filter of(String field, String match, String value) {
            if (field == null || field.isEmpty()) {
                return new Filter(null, null, null);
            }
            if ("group".equals(field) && !"eq".equals(match)) {
                throw new IllegalArgumentException("group");
            }
            if (!COLUMNS.containsKey(field) && !ATTRIBUTES.contains(field) && !"group".equals(field)) {
                throw new IllegalArgumentException("field");
            }
            if (!"eq".equals(match) && !"prefix".equals(match) || value == null || value.length() > 255) {
                throw new IllegalArgumentException("filter");
            }
            if ("status".equals(field) && !("eq".equals(match) && ("Enabled".equals(value) || "Disabled".equals(value)))) {
                throw new IllegalArgumentException("status");
            }
            // Keycloak keeps usernames and emails in lower case.
            boolean lower = "username".equals(field) || "email".equals(field);
            return new Filter(field, match, lower ? value.toLowerCase(Locale.ROOT) : value);
        }
    }

    /** Whether Keycloak's database is MariaDB or MySQL (asked once: the index hint above is theirs). */
    static boolean mysql(KeycloakSession session) {
        Boolean known = mysql;
        if (known == null) {
            known = false;
            try {
                Class<?> factory = Class.forName("org.keycloak.connections.jpa.JpaConnectionProviderFactory", true,
                        UserPages.class.getClassLoader());
                Class<? extends Provider> provider = Class.forName(PasswordWrites.JPA_PROVIDER, true,
                        UserPages.class.getClassLoader()).asSubclass(Provider.class);
                Object jpa = session.getKeycloakSessionFactory().getProviderFactory(provider);
                try (Connection connection = (Connection) factory.getMethod("getConnection").invoke(jpa)) {
                    String product = connection.getMetaData().getDatabaseProductName().toLowerCase(Locale.ROOT);
                    known = product.contains("mariadb") || product.contains("mysql");
                }
            } catch (ReflectiveOperationException | SQLException e) {
                throw new IllegalStateException("Keycloak's database cannot be told", e);
            }
            mysql = known;
        }
        return known;
    }

    private final EntityManager entities;
    private final boolean onMysql;
    private final int max;
    private final String sql;
    private final List<Object> parameters = new ArrayList<>();

    UserPages(EntityManager entities, boolean mysql, RealmModel realm, Filter filter, String after, int max) {
        this.entities = entities;
        this.onMysql = mysql;
        this.max = max;
        StringBuilder sql = new StringBuilder("SELECT u.ID, u.USERNAME FROM USER_ENTITY u");
        if (mysql && filter.field() != null && SELECTIVE.contains(filter.field())) {
            // With ORDER BY ... LIMIT, MariaDB walks the username index hoping to meet enough matches
            // early, and reads most of the realm when the filter matches a few: the filter's index
            // first, then a sort of what it found.
            sql.append(" IGNORE INDEX FOR ORDER BY (UK_RU8TT6T700S9V50BU18WS5HA6)");
        }
        String where = " WHERE u.REALM_ID = ?1 AND u.SERVICE_ACCOUNT_CLIENT_LINK IS NULL AND u.USERNAME > ?2";
        parameters.add(realm.getId());
        parameters.add(after == null ? "" : after);
        if (filter.field() != null) {
            String column = COLUMNS.get(filter.field());
            if ("group".equals(filter.field())) {
                sql.append(" JOIN USER_GROUP_MEMBERSHIP m ON m.USER_ID = u.ID");
                column = "m.GROUP_ID";
            } else if (column == null) {
                sql.append(" JOIN USER_ATTRIBUTE a ON a.USER_ID = u.ID AND a.NAME = ?3");
                parameters.add(filter.field());
                column = "a.VALUE";
            }
            where += " AND " + column + condition(filter, parameters.size() + 1);
        }
        sql.append(where).append(" ORDER BY u.USERNAME LIMIT ").append(max);
        this.sql = sql.toString();
    }

    private String condition(Filter filter, int position) {
        if ("status".equals(filter.field())) {
            parameters.add("Enabled".equals(filter.value()));
            return " = ?" + position;
        }
        if ("eq".equals(filter.match())) {
            parameters.add(filter.value());
            return " = ?" + position;
        }
        parameters.add(filter.value().replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%");
        return " LIKE ?" + position + " ESCAPE '!'";
    }

    private Query bound(String statement) {
        Query query = entities.createNativeQuery(statement);
        for (int i = 0; i < parameters.size(); i++) {
            query.setParameter(i + 1, parameters.get(i));
        }
        return query;
    }

    /**
     * The page: each user as the Admin API represents them, and whether they have a password; and the
     * username to start the next page after, null on the last page.
     */
    Map<String, Object> page(KeycloakSession session, RealmModel realm) {
        List<Map<String, Object>> page = new ArrayList<>();
        List<?> rows = bound(sql).getResultList();
        for (Object row : rows) {
            UserModel user = session.users().getUserById(realm, (String) ((Object[]) row)[0]);
            if (user == null) {
                continue;   // deleted between the query and the read
            }
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("user", ModelToRepresentation.toRepresentation(session, user, false));
            entry.put("password", user.credentialManager().isConfiguredFor(PasswordCredentialModel.TYPE));
            page.add(entry);
        }
        Map<String, Object> answer = new LinkedHashMap<>();
        answer.put("users", page);
        if (rows.size() == max) {
            answer.put("next", ((Object[]) rows.get(rows.size() - 1))[1]);
        }
        return answer;
    }

    /** The database's plan of the page's statement (MariaDB/MySQL's EXPLAIN FORMAT=JSON); null elsewhere. */
    String plan() {
        if (!onMysql) {
            return null;
        }
        Object answer = bound("EXPLAIN FORMAT=JSON " + sql).getSingleResult();
        return answer instanceof Object[] row ? String.valueOf(row[0]) : String.valueOf(answer);
    }
}
