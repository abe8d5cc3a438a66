package cn.identity.keycloak;

import java.util.ArrayList;
import java.util.List;

import org.keycloak.models.ClientSessionContext;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.ProtocolMapperModel;
import org.keycloak.models.UserSessionModel;
import org.keycloak.protocol.oidc.mappers.AbstractOIDCProtocolMapper;
import org.keycloak.protocol.oidc.mappers.OIDCAccessTokenResponseMapper;
import org.keycloak.protocol.oidc.mappers.OIDCAttributeMapperHelper;
import org.keycloak.protocol.oidc.mappers.OIDCIDTokenMapper;
import org.keycloak.provider.ProviderConfigProperty;
import org.keycloak.representations.AccessTokenResponse;
import org.keycloak.representations.IDToken;

/**
 * Cognito's issuer for the app clients' ID and access tokens: {@code {base}/{user pool id}}, where
 * the base is the one Keycloak answers at for this request (the service's public base URL, from
 * its X-Forwarded headers), as Cognito's is {@code https://cognito-idp.{region}.amazonaws.com/{pool}}.
 * A client built for Cognito that derives the issuer from its endpoint and pool id (pycognito's
 * Cognito class) then accepts the tokens unchanged.
 *
 * This mapper sets the ID token's; {@link CognitoIssuerPostProcessor} the access token's, once the
 * refresh token has been made from it: the refresh token keeps Keycloak's own issuer, which
 * Keycloak's refresh grant requires.
 *
 * The ID token of an API sign-in or refresh (the password and refresh grants) carries no
 * {@code at_hash}, as Cognito's does not (its claim set: shared/spec/token-contract.md); the
 * hosted UI's code flow keeps it. Keycloak computes it after every mapper has run, so it is taken
 * out of the finished response and the ID token signed again with the realm's key.
 */
public class CognitoIssuerMapper extends AbstractOIDCProtocolMapper
        implements OIDCIDTokenMapper, OIDCAccessTokenResponseMapper {

    public static final String PROVIDER_ID = "cognito-issuer-mapper";
    static final String POOL_ID = "user.pool.id";
    private static final List<ProviderConfigProperty> CONFIG = new ArrayList<>();

    static {
        ProviderConfigProperty pool = new ProviderConfigProperty();
        pool.setName(POOL_ID);
        pool.setLabel("User pool id");
        pool.setType(ProviderConfigProperty.STRING_TYPE);
        pool.setHelpText("The Cognito user pool id the apps are configured with (IDENTITY_USER_POOL_ID).");
        CONFIG.add(pool);
        OIDCAttributeMapperHelper.addIncludeInTokensConfig(CONFIG, CognitoIssuerMapper.class);
    }

    /** The issuer for this request, or null when the mapper names no pool. */
    static String issuer(KeycloakSession session, ProtocolMapperModel mapper) {
        String pool = mapper.getConfig() == null ? null : mapper.getConfig().get(POOL_ID);
        if (pool == null || pool.isBlank()) {
            return null;
        }
        String base = session.getContext().getUri().getBaseUri().toString();
        return (base.endsWith("/") ? base.substring(0, base.length() - 1) : base) + "/" + pool;
    }

    @Override
    protected void setClaim(IDToken token, ProtocolMapperModel mappingModel, UserSessionModel userSession,
                            KeycloakSession keycloakSession, ClientSessionContext clientSessionCtx) {
        String issuer = issuer(keycloakSession, mappingModel);
        if (issuer != null) {
            token.issuer(issuer);
        }
    }

    @Override
    public AccessTokenResponse transformAccessTokenResponse(AccessTokenResponse response, ProtocolMapperModel mapping,
            KeycloakSession session, UserSessionModel userSession, ClientSessionContext clientSessionCtx) {
        String grant = session.getContext().getHttpRequest().getDecodedFormParameters().getFirst("grant_type");
        if (response.getIdToken() == null || !("password".equals(grant) || "refresh_token".equals(grant))) {
            return response;
        }
        IDToken idToken = session.tokens().decode(response.getIdToken(), IDToken.class);
        if (idToken != null && idToken.getAccessTokenHash() != null) {
            idToken.setAccessTokenHash(null);
            response.setIdToken(session.tokens().encodeAndEncrypt(idToken));
        }
        return response;
    }

    @Override
    public String getDisplayCategory() {
        return TOKEN_MAPPER_CATEGORY;
    }

    @Override
    public String getDisplayType() {
        return "Cognito issuer";
    }

    @Override
    public String getHelpText() {
        return "Issues ID and access tokens as {base}/{user pool id}, Cognito's shape; refresh tokens keep Keycloak's.";
    }

    @Override
    public List<ProviderConfigProperty> getConfigProperties() {
        return CONFIG;
    }

    @Override
    public String getId() {
        return PROVIDER_ID;
    }
}
