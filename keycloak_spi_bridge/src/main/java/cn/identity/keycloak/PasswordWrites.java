package cn.identity.keycloak;

import java.util.HashSet;
import java.util.Set;

import jakarta.persistence.EntityManager;
import jakarta.persistence.LockModeType;

import org.jboss.logging.Logger;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.UserModel;
import org.keycloak.models.credential.PasswordCredentialModel;
import org.keycloak.models.utils.KeycloakModelUtils;
import org.keycloak.provider.Provider;

/**
 * One password credential per user, whoever writes it. Keycloak's own writes (an admin's
 * reset-password, the login page's "forgot password" and update-password) read the user's password
 * and then add or replace it, as the first-login migration does; two at once could each find none
 * and add one. So every password write of the user queues on the user's row (a row lock held until
 * its transaction ends): the migration takes it before it looks for a password, and
 * {@link MigrationStateListener} takes it right after Keycloak's write, in the same transaction.
 *
 * The rule when they meet: a password Keycloak holds wins. A migration that comes second finds it
 * and stores nothing (409). A Keycloak write that comes second is a reset, which replaces whatever
 * password the user had: if it added its credential beside the one a migration committed while it
 * ran, the migration's goes. What is committed is read in a fresh transaction, so another
 * transaction's write shows whatever this one's isolation level (MariaDB's repeatable read).
 */
final class PasswordWrites {

    private static final Logger LOG = Logger.getLogger(PasswordWrites.class);
    // Named, not imported: keycloak-model-jpa's POM names a parent Maven Central does not serve, so
    // the module cannot compile against it; Keycloak's server has it.
    static final String JPA_PROVIDER = "org.keycloak.connections.jpa.JpaConnectionProvider";

    private PasswordWrites() {
    }

    /** Queues behind any other password write of the user; held until this transaction ends. */
    static void lock(KeycloakSession session, UserModel user) {
        entities(session).createQuery("select u from UserEntity u where u.id = :id")
                .setParameter("id", user.getId())
                .setLockMode(LockModeType.PESSIMISTIC_WRITE)
                .getResultList();
    }

    /** The user's password credentials committed by now (call with the lock held). */
    static Set<String> committed(KeycloakSession session, UserModel user) {
        return KeycloakModelUtils.runJobInTransactionWithResult(session.getKeycloakSessionFactory(),
                fresh -> passwords(fresh, user.getId()));
    }

    /**
     * After Keycloak wrote the user's password in this transaction: once the user's other password
     * writes are done, the credential this transaction added is the only password left. A password
     * replaced in place leaves nothing to do.
     */
    static void keepKeycloaksWrite(KeycloakSession session, UserModel user) {
        lock(session, user);
        Set<String> committed = committed(session, user);
        Set<String> added = passwords(session, user.getId());
        added.removeAll(committed);
        if (added.size() != 1 || committed.isEmpty()) {
            return;
        }
        for (String other : committed) {
            if (user.credentialManager().removeStoredCredentialById(other)) {
                LOG.infof("a password set at Keycloak replaced the one a first-login migration stored at the "
                        + "same moment (user %s)", user.getId());
            }
        }
    }

    /** The ids of the user's password credentials as this session's transaction sees them. */
    private static Set<String> passwords(KeycloakSession session, String userId) {
        return new HashSet<>(entities(session)
                .createQuery("select c.id from CredentialEntity c where c.user.id = :user and c.type = :type",
                        String.class)
                .setParameter("user", userId)
                .setParameter("type", PasswordCredentialModel.TYPE)
                .getResultList());
    }

    static EntityManager entities(KeycloakSession session) {
        try {
            Class<? extends Provider> jpa = Class.forName(JPA_PROVIDER, true, PasswordWrites.class.getClassLoader())
                    .asSubclass(Provider.class);
            return (EntityManager) jpa.getMethod("getEntityManager").invoke(session.getProvider(jpa));
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("Keycloak's JPA store is not available", e);
        }
    }
}
