package cn.identity.keycloak;

import org.keycloak.Config;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakSessionFactory;
import org.keycloak.models.ProtocolMapperModel;
import org.keycloak.protocol.oidc.token.TokenPostProcessor;
import org.keycloak.protocol.oidc.token.TokenPostProcessorContext;
import org.keycloak.protocol.oidc.token.TokenPostProcessorFactory;

/**
 * The access token's half of {@link CognitoIssuerMapper}: Keycloak runs token post-processors after
 * it has made the refresh token from the access token (which copies its issuer) and before it signs
 * either, so the access token gets Cognito's issuer and the refresh token keeps Keycloak's. Only a
 * client whose tokens carry the mapper (the app clients, through their client scope) is touched.
 */
public class CognitoIssuerPostProcessor implements TokenPostProcessor, TokenPostProcessorFactory {

    public static final String PROVIDER_ID = "cognito-issuer";
    private final KeycloakSession session;

    public CognitoIssuerPostProcessor() {
        this(null);
    }

    private CognitoIssuerPostProcessor(KeycloakSession session) {
        this.session = session;
    }

    @Override
    public void process(TokenPostProcessorContext context) {
        if (context.accessToken() == null || context.clientSessionCtx() == null) {
            return;
        }
        ProtocolMapperModel mapper = context.clientSessionCtx().getProtocolMappersStream()
                .filter(m -> CognitoIssuerMapper.PROVIDER_ID.equals(m.getProtocolMapper()))
                .findFirst().orElse(null);
        String issuer = mapper == null ? null : CognitoIssuerMapper.issuer(session, mapper);
        if (issuer != null) {
            context.accessToken().issuer(issuer);
        }
    }

    @Override
    public TokenPostProcessor create(KeycloakSession session) {
        return new CognitoIssuerPostProcessor(session);
    }

    @Override
    public void init(Config.Scope config) {
    }

    @Override
    public void postInit(KeycloakSessionFactory factory) {
    }

    @Override
    public void close() {
    }

    @Override
    public String getId() {
        return PROVIDER_ID;
    }
}
