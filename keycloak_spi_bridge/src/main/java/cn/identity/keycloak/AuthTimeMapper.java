package cn.identity.keycloak;

import java.util.ArrayList;
import java.util.List;

import org.keycloak.models.AuthenticatedClientSessionModel;
import org.keycloak.models.ClientSessionContext;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.ProtocolMapperModel;
import org.keycloak.models.UserSessionModel;
import org.keycloak.protocol.oidc.mappers.AbstractOIDCProtocolMapper;
import org.keycloak.protocol.oidc.mappers.OIDCAccessTokenMapper;
import org.keycloak.protocol.oidc.mappers.OIDCAttributeMapperHelper;
import org.keycloak.protocol.oidc.mappers.OIDCIDTokenMapper;
import org.keycloak.protocol.oidc.mappers.UserInfoTokenMapper;
import org.keycloak.provider.ProviderConfigProperty;
import org.keycloak.representations.IDToken;

/**
 * Cognito's {@code auth_time} and {@code origin_jti} for every token, the password grant included.
 *
 * Keycloak records the authentication time (the AUTH_TIME session note) only in the browser
 * flow, so tokens of the service's API sign-in would lack the claim. This mapper fills it from
 * the note when present, else from the user session's start, which is when the password was
 * checked. {@code origin_jti} is the user session's id, stable across refreshes as Cognito's is.
 */
public class AuthTimeMapper extends AbstractOIDCProtocolMapper
        implements OIDCAccessTokenMapper, OIDCIDTokenMapper, UserInfoTokenMapper {

    public static final String PROVIDER_ID = "cognito-auth-time-mapper";
    private static final List<ProviderConfigProperty> CONFIG = new ArrayList<>();

    static {
        OIDCAttributeMapperHelper.addIncludeInTokensConfig(CONFIG, AuthTimeMapper.class);
    }

    @Override
    public String getDisplayCategory() {
        return TOKEN_MAPPER_CATEGORY;
    }

    @Override
    public String getDisplayType() {
        return "Cognito auth_time and origin_jti";
    }

    @Override
    public String getHelpText() {
        return "Sets auth_time (session start when Keycloak did not record it) and origin_jti (the session id).";
    }

    @Override
    public List<ProviderConfigProperty> getConfigProperties() {
        return CONFIG;
    }

    @Override
    public String getId() {
        return PROVIDER_ID;
    }

    @Override
    protected void setClaim(IDToken token, ProtocolMapperModel mappingModel, UserSessionModel userSession,
                            KeycloakSession keycloakSession, ClientSessionContext clientSessionCtx) {
        if (userSession == null) {
            return;
        }
        if (token.getAuth_time() == null) {
            String note = userSession.getNote("AUTH_TIME");
            long authTime = note != null ? Long.parseLong(note) : userSession.getStarted();
            token.setAuth_time(authTime);
        }
        token.getOtherClaims().put("origin_jti", userSession.getId());
    }
}
