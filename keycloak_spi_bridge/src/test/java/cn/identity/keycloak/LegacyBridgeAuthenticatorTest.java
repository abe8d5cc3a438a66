package cn.identity.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.http.HttpClient;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicReference;

import com.sun.net.httpserver.HttpServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The HTTP side of the bridge call, against a loopback HTTP server that answers as the service's
 * bridge endpoint does (the Python suite tests the real endpoint with the real Keycloak).
 */
class LegacyBridgeAuthenticatorTest {

    private HttpServer server;
    private final AtomicReference<String> lastAuthorization = new AtomicReference<>();
    private final AtomicReference<String> lastBody = new AtomicReference<>();
    private volatile int status = 200;
    private volatile String answer = "{\"valid\": true}";
    private volatile long delayMs = 0;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(1)).build();

    @BeforeEach
    void start() throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/bridge/v1/verify", exchange -> {
            lastAuthorization.set(exchange.getRequestHeaders().getFirst("Authorization"));
            lastBody.set(new String(exchange.getRequestBody().readAllBytes(), StandardCharsets.UTF_8));
            try {
                Thread.sleep(delayMs);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            byte[] bytes = answer.getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(status, bytes.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(bytes);
            }
        });
        server.start();
    }

    @AfterEach
    void stop() {
        server.stop(0);
    }

    private String url() {
        return "http://127.0.0.1:" + server.getAddress().getPort() + "/bridge/v1/";
    }

    @Test
    void validAnswerSendsSecretUserIdAndPassword() {
        String id = "0b8f1c9e-5d2a-4c1e-9f4b-2a6d8e3c7b10";
        assertTrue(LegacyBridgeAuthenticator.ask(http, url(), "s3cret", 1000, id, "pa\"ss"));
        assertEquals("Bearer s3cret", lastAuthorization.get());
        assertTrue(lastBody.get().contains("\"user_id\":\"" + id + "\""), lastBody.get());
        assertFalse(lastBody.get().contains("username"), lastBody.get());
        assertTrue(lastBody.get().contains("pa\\\"ss"), lastBody.get());
    }

    @Test
    void resetRequiredIsItsOwnAnswer() {
        answer = "{\"valid\": false, \"reason\": \"reset_required\"}";
        assertEquals(LegacyBridgeAuthenticator.Answer.RESET_REQUIRED,
                LegacyBridgeAuthenticator.answer(http, url(), "s", 1000, "a", "b"));
        answer = "{\"valid\": false, \"reason\": \"wrong_password\"}";
        assertEquals(LegacyBridgeAuthenticator.Answer.NO,
                LegacyBridgeAuthenticator.answer(http, url(), "s", 1000, "a", "b"));
    }

    @Test
    void invalidRefusedAndUnknownAreFalse() {
        answer = "{\"valid\": false, \"reason\": \"wrong_password\"}";
        assertFalse(LegacyBridgeAuthenticator.ask(http, url(), "s", 1000, "a", "b"));
        status = 403;
        answer = "{\"error\": \"forbidden\"}";
        assertFalse(LegacyBridgeAuthenticator.ask(http, url(), "s", 1000, "a", "b"));
        status = 404;
        assertFalse(LegacyBridgeAuthenticator.ask(http, url(), "s", 1000, "a", "b"));
    }

    @Test
    void slowBridgeIsFalseWithinTheTimeout() {
        delayMs = 3000;
        long started = System.nanoTime();
        assertFalse(LegacyBridgeAuthenticator.ask(http, url(), "s", 300, "a", "b"));
        assertTrue((System.nanoTime() - started) / 1_000_000 < 2000);
    }

    @Test
    void downOrUnconfiguredBridgeIsFalse() throws IOException {
        int closed;
        try (ServerSocket socket = new ServerSocket(0)) {
            closed = socket.getLocalPort();
        }
        assertFalse(LegacyBridgeAuthenticator.ask(http, "http://127.0.0.1:" + closed + "/bridge/v1", "s", 500, "a", "b"));
        assertFalse(LegacyBridgeAuthenticator.ask(http, null, "s", 500, "a", "b"));
        assertFalse(LegacyBridgeAuthenticator.ask(http, url(), "", 500, "a", "b"));
    }

    @Test
    void timeoutIsBounded() {
        assertEquals(2500, LegacyBridgeAuthenticator.parseTimeout(null));
        assertEquals(2500, LegacyBridgeAuthenticator.parseTimeout("soon"));
        assertEquals(100, LegacyBridgeAuthenticator.parseTimeout("1"));
        assertEquals(2900, LegacyBridgeAuthenticator.parseTimeout("60000"));
    }
}
