package cn.identity.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

/** What the bulk endpoint takes from the importer, and the malformed batches it refuses whole (400). */
class BulkUsersTest {

    private static Map<String, Object> user(String id) {
        Map<String, Object> user = new HashMap<>();
        user.put("id", id);
        user.put("username", "u-" + id);
        user.put("email", id + "@example.com");
        user.put("emailVerified", true);
        user.put("attributes", Map.of("phone_number", List.of("+8613800138000"), "custom.deviceModel", List.of("BP-7")));
        user.put("kii_user_id", "kii-" + id);
        user.put("migration_state", "pending");
        user.put("createdTimestamp", 1700000000000L);
        return user;
    }

    @Test
    void aWellFormedBatchParses() {
        List<BulkUsers.Wanted> parsed = BulkUsers.parse(List.of(user("a"), user("b")));
        assertEquals(2, parsed.size());
        BulkUsers.Wanted first = parsed.get(0);
        assertEquals("u-a", first.username());
        assertEquals("kii-a", first.kiiUserId());
        assertEquals("pending", first.migrationState());
        assertEquals(1700000000000L, first.createdTimestamp());
        assertEquals(List.of("BP-7"), first.attributes().get("custom.deviceModel"));
        assertNull(first.firstName());
    }

    @Test
    void malformedBatchesAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> BulkUsers.parse(null));
        assertThrows(IllegalArgumentException.class, () -> BulkUsers.parse(List.of()));
        assertThrows(IllegalArgumentException.class, () -> BulkUsers.parse(List.of(user("a"), user("a"))));
        List<Object> tooMany = new ArrayList<>();
        for (int i = 0; i <= BulkUsers.MAX_BATCH; i++) {
            tooMany.add(user("u" + i));
        }
        assertThrows(IllegalArgumentException.class, () -> BulkUsers.parse(tooMany));
        for (Map.Entry<String, Object> change : List.<Map.Entry<String, Object>>of(
                Map.entry("id", ""), Map.entry("username", 7), Map.entry("migration_state", "maybe"),
                Map.entry("attributes", Map.of("kii_user_id", List.of("forged"))),
                Map.entry("attributes", Map.of("migration_state", List.of("migrated"))),
                Map.entry("attributes", Map.of("phone_number", List.of())),
                Map.entry("attributes", Map.of("name", List.of("x".repeat(2049)))),
                Map.entry("requiredActions", "UPDATE_PASSWORD"))) {
            Map<String, Object> bad = user("a");
            bad.put(change.getKey(), change.getValue());
            assertThrows(IllegalArgumentException.class, () -> BulkUsers.parse(List.of(bad)), change.toString());
        }
    }
}
