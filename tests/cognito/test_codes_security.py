"""One-time codes and the account lifecycle against an attacker (issue 14, points 4-7 and 9): through boto3
against the live service, real Keycloak, real SMTP."""

from __future__ import annotations

import logging
import re
import statistics
import time
import uuid

import sqlalchemy as sa
from prometheus_client import REGISTRY

from identity.db import db
from identity.legacy.models import LegacyUser, MigrationState
from tests.cognito.fixtures import free_port, live_app, settle_mail
from tests.cognito.test_sign_in import error_of, sign_in
from tests.conftest import TEST_REALM

MASKED = re.compile(r"^[a-z0-9]\*\*\*@[a-z0-9]\*\*\*$")
MISMATCH = ("CodeMismatchException", "Invalid verification code provided, please try again.")
LIMIT = ("LimitExceededException", "Attempt limit exceeded, please try after some time.")
TARGET = "AWSCognitoIdentityProviderService."


def mailbox(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}@example.com"


def wrong(code: str, by: int = 1) -> str:
    return f"{(int(code) + by) % 10**6:06d}"


def attributes_of(cognito, token: str) -> dict:
    return {a["Name"]: a["Value"] for a in cognito.get_user(AccessToken=token)["UserAttributes"]}


def mask(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain[:1]}***"


def delivery(response: dict) -> dict:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def looks_delivered(answer: dict) -> bool:
    details = answer["CodeDeliveryDetails"]
    return set(answer) == {"CodeDeliveryDetails"} and details["DeliveryMedium"] == "EMAIL" and \
        details["AttributeName"] == "email" and bool(MASKED.match(details["Destination"])) and len(details) == 3


def passwords_of(master_admin, user_id: str) -> list:
    """The user's password credentials (id and creation time): a reset would replace them."""
    master_admin.change_current_realm(TEST_REALM)
    return [(c["id"], c.get("createdDate")) for c in master_admin.get_credentials(user_id) if c["type"] == "password"]


# --- point 4: a code verifies only the address it was sent to ---------------------------------------------


def test_a_code_verifies_only_the_address_it_was_sent_to(cognito, kc_user, smtp, master_admin):
    """The review's H2: use up the hour's codes on one's own mailboxes, change to the victim's address
    (refused), verify with the last code: the victim's address must not become verified."""
    user = kc_user(email=mailbox("owner"), emailVerified=True, password="Owner-Pass-1")
    token = sign_in(cognito, user["username"], "Owner-Pass-1")["AuthenticationResult"]["AccessToken"]
    own = [mailbox("own") for _ in range(5)]
    codes = []
    for address in own:
        result = cognito.update_user_attributes(AccessToken=token, UserAttributes=[{"Name": "email", "Value": address}])
        assert result["CodeDeliveryDetailsList"][0]["Destination"] == "o***@e***"
        codes.append(smtp.code_for(address))
    victim = mailbox("victim")
    assert error_of(lambda: cognito.update_user_attributes(
        AccessToken=token, UserAttributes=[{"Name": "email", "Value": victim}])) == LIMIT
    # Nothing half-written: the refused change left the address as it was.
    assert attributes_of(cognito, token)["email"] == own[-1]
    # The refused issue superseded the last code, and no code was ever sent to the victim's address.
    assert error_of(lambda: cognito.verify_user_attribute(AccessToken=token, AttributeName="email",
                                                          Code=codes[-1])) == MISMATCH
    attributes = attributes_of(cognito, token)
    assert (attributes["email"], attributes["email_verified"]) == (own[-1], "false")
    assert smtp.to(victim) == []


def test_a_code_does_not_verify_an_address_written_after_it_was_sent(cognito, kc_user, smtp, master_admin):
    """The address changed by another path (a concurrent update, an administrator) after the code left:
    the code was for the old value, so it verifies nothing."""
    user = kc_user(email=mailbox("first"), emailVerified=True, password="Owner-Pass-1")
    token = sign_in(cognito, user["username"], "Owner-Pass-1")["AuthenticationResult"]["AccessToken"]
    mine = mailbox("mine")
    cognito.update_user_attributes(AccessToken=token, UserAttributes=[{"Name": "email", "Value": mine}])
    code = smtp.code_for(mine)
    victim = mailbox("victim")
    master_admin.change_current_realm(TEST_REALM)
    current = master_admin.get_user(user["id"])
    master_admin.update_user(user["id"], {**current, "email": victim, "emailVerified": False})
    assert error_of(lambda: cognito.verify_user_attribute(AccessToken=token, AttributeName="email",
                                                          Code=code)) == MISMATCH
    assert master_admin.get_user(user["id"])["emailVerified"] is False


def test_a_refused_issue_supersedes_the_current_code(cognito, kc_user, smtp):
    """The hour's last code, then a sixth request (LimitExceeded): the last code stops working."""
    address = mailbox("superseded")
    user = kc_user(email=address, emailVerified=True, password="Old-Password-1")
    for _ in range(5):
        cognito.forgot_password(ClientId="mobile", Username=user["username"])
        last = smtp.code_for(address)
    assert error_of(lambda: cognito.forgot_password(ClientId="mobile", Username=user["username"])) == LIMIT
    assert error_of(lambda: cognito.confirm_forgot_password(
        ClientId="mobile", Username=user["username"], ConfirmationCode=last, Password="New-Password-1")) == MISMATCH
    assert sign_in(cognito, user["username"], "Old-Password-1")["AuthenticationResult"]


def test_an_undelivered_code_is_withdrawn_logged_counted_and_revives_no_older_one(
        cognito, live_service, realm, database_url, kc_user, smtp, caplog):
    address = mailbox("undelivered")
    user = kc_user(email=address, emailVerified=True, password="Old-Password-1")
    cognito.forgot_password(ClientId="mobile", Username=user["username"])
    first = smtp.code_for(address)
    # The same service with a mail server that is down: the answer does not wait for (or tell of) the mail.
    broken = live_app(realm, database_url, free_port(), SMTP_HOST="127.0.0.1", SMTP_PORT=free_port(),
                      SMTP_TIMEOUT=2)
    failed_before = REGISTRY.get_sample_value("identity_code_delivery_failures_total", {"purpose": "reset"}) or 0
    with caplog.at_level(logging.ERROR):
        response = broken.test_client().post("/", json={"ClientId": "mobile", "Username": user["username"]},
                                             headers={"X-Amz-Target": TARGET + "ForgotPassword"})
        assert response.status_code == 200, response.get_json(force=True)
        assert response.get_json(force=True) == {"CodeDeliveryDetails": {
            "Destination": "u***@e***", "DeliveryMedium": "EMAIL", "AttributeName": "email"}}
        settle_mail({"app": broken})
    assert REGISTRY.get_sample_value("identity_code_delivery_failures_total", {"purpose": "reset"}) == \
        failed_before + 1
    assert "code not delivered" in [r.getMessage() for r in caplog.records if r.name.startswith("identity")]
    # The undelivered code is withdrawn, and the one mailed before it stays superseded.
    assert error_of(lambda: cognito.confirm_forgot_password(
        ClientId="mobile", Username=user["username"], ConfirmationCode=first, Password="New-Password-1")) == MISMATCH
    assert sign_in(cognito, user["username"], "Old-Password-1")["AuthenticationResult"]


# --- point 5: a changed phone number is not verified --------------------------------------------------------


def test_changing_the_phone_number_clears_its_verified_flag(cognito, live_service, kc_user):
    from tests.cognito.test_sign_in import verify_like_cognito

    user = kc_user(email=mailbox("phone"), emailVerified=True, password="Phone-Pass-1",
                   attributes={"phone_number": ["+8613800138000"], "phone_number_verified": ["true"]})
    token = sign_in(cognito, user["username"], "Phone-Pass-1")["AuthenticationResult"]["AccessToken"]
    # The same number again changes nothing.
    cognito.update_user_attributes(AccessToken=token, UserAttributes=[
        {"Name": "phone_number", "Value": "+8613800138000"}])
    assert attributes_of(cognito, token)["phone_number_verified"] == "true"
    result = cognito.update_user_attributes(AccessToken=token, UserAttributes=[
        {"Name": "phone_number", "Value": "+8613900139000"}])
    assert result["CodeDeliveryDetailsList"] == []
    attributes = attributes_of(cognito, token)
    assert (attributes["phone_number"], attributes["phone_number_verified"]) == ("+8613900139000", "false")
    id_token = sign_in(cognito, user["username"], "Phone-Pass-1")["AuthenticationResult"]["IdToken"]
    claims = verify_like_cognito(id_token, live_service, "id")
    assert (claims["phone_number"], claims["phone_number_verified"]) == ("+8613900139000", False)


# --- point 6: guessing is capped per user and per address ------------------------------------------------------


def test_wrong_codes_are_capped_per_user_across_codes(cognito, live_service, kc_user, smtp):
    """Wrong entries of every code of a user add up, whatever the kind: past the limit, even the right
    code of a fresh one is refused for the rest of the window."""
    limit = live_service["app"].config.get("CODE_FAILURE_LIMIT", 10)
    address = mailbox("capped")
    user = kc_user(email=address, emailVerified=True, password="Old-Password-1")
    token = sign_in(cognito, user["username"], "Old-Password-1")["AuthenticationResult"]["AccessToken"]

    def reset_code():
        cognito.forgot_password(ClientId="mobile", Username=user["username"])
        code = smtp.code_for(address)
        return code, lambda guess, password="Guess-Pass-1": cognito.confirm_forgot_password(
            ClientId="mobile", Username=user["username"], ConfirmationCode=guess, Password=password)

    def address_code():
        nonlocal address
        address = mailbox("capped-new")
        cognito.update_user_attributes(AccessToken=token, UserAttributes=[{"Name": "email", "Value": address}])
        code = smtp.code_for(address)
        return code, lambda guess, password=None: cognito.verify_user_attribute(
            AccessToken=token, AttributeName="email", Code=guess)

    failures, kind = 0, reset_code
    while failures < limit:
        code, enter = kind()
        for n in range(1, 1 + min(4, limit - failures)):  # fewer than one code's own limit
            assert error_of(lambda: enter(wrong(code, n))) == MISMATCH
            failures += 1
        if failures < limit:
            enter(code)  # the right one still works (a verified address, so resets are mailed to it)
        kind = address_code if kind is reset_code else reset_code
    code, enter = kind()
    assert error_of(lambda: enter(code, "Locked-Out-1")) == LIMIT
    if kind is address_code:
        assert attributes_of(cognito, token)["email_verified"] == "false"
    else:
        assert error_of(lambda: sign_in(cognito, user["username"], "Locked-Out-1"))[0] == "NotAuthorizedException"


def test_code_operations_count_against_the_client_address(live_service, realm, database_url, kc_user, smtp, cognito):
    """The sign-in's per-address limit covers ConfirmSignUp, ConfirmForgotPassword and VerifyUserAttribute."""
    port = int(live_service["url"].rsplit(":", 1)[1])  # the same issuer, so the live service's tokens are good
    limited = live_app(realm, database_url, port, IP_FAILURE_LIMIT=3, SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port)
    client = limited.test_client()
    guesser, other = f"198.51.100.{uuid.uuid4().int % 250 + 1}", f"192.0.2.{uuid.uuid4().int % 250 + 1}"

    def call(operation: str, body: dict, address: str) -> tuple[int, str, str]:
        response = client.post("/", json=body, headers={"X-Amz-Target": TARGET + operation},
                               environ_base={"REMOTE_ADDR": address})
        answer = response.get_json(force=True)
        return response.status_code, answer.get("__type"), answer.get("message")

    address = mailbox("throttled")
    user = kc_user(email=address, emailVerified=True, password="Old-Password-1")
    token = sign_in(cognito, user["username"], "Old-Password-1")["AuthenticationResult"]["AccessToken"]
    mismatch = (400, *MISMATCH)
    assert call("ConfirmSignUp", {"ClientId": "mobile", "Username": f"nobody-{uuid.uuid4().hex[:8]}",
                                  "ConfirmationCode": "123456"}, guesser) == mismatch
    assert call("VerifyUserAttribute", {"AccessToken": token, "AttributeName": "email", "Code": "123456"},
                guesser) == mismatch
    assert call("ConfirmForgotPassword", {"ClientId": "mobile", "Username": user["username"],
                                          "ConfirmationCode": "123456", "Password": "New-Password-1"},
                guesser) == mismatch
    cognito.forgot_password(ClientId="mobile", Username=user["username"])
    code = smtp.code_for(address)
    confirm = {"ClientId": "mobile", "Username": user["username"], "ConfirmationCode": code,
               "Password": "New-Password-1"}
    assert call("ConfirmForgotPassword", confirm, guesser) == (400, *LIMIT)
    assert call("ConfirmSignUp", {"ClientId": "mobile", "Username": user["username"], "ConfirmationCode": code},
                guesser) == (400, *LIMIT)
    assert call("ConfirmForgotPassword", confirm, other)[0] == 200
    assert sign_in(cognito, user["username"], "New-Password-1")["AuthenticationResult"]


# --- point 7: disabled and deleted users get no code ---------------------------------------------------------


def delete_as_the_importer_does(app, master_admin, user: dict) -> None:
    """`identity import --deleted`: the Keycloak user disabled, the store row disabled, no hash, reset_required."""
    master_admin.change_current_realm(TEST_REALM)
    current = master_admin.get_user(user["id"])
    master_admin.update_user(user["id"], {**current, "enabled": False})
    with app.app_context():
        db.session.execute(sa.update(LegacyUser).where(LegacyUser.kii_user_id == user["kii_user_id"]).values(
            disabled=True, password_hash=None, state=MigrationState.reset_required))
        db.session.commit()


def test_deleted_and_disabled_users_get_no_code(cognito, live_service, legacy_user, kc_user, smtp, master_admin):
    deleted_address, disabled_address = mailbox("deleted"), mailbox("disabled")
    deleted = legacy_user(email=deleted_address)
    disabled = kc_user(email=disabled_address, emailVerified=True, password="Disabled-Pass-1")
    password_before = passwords_of(master_admin, disabled["id"])
    # Codes mailed while the accounts were still in use...
    cognito.forgot_password(ClientId="mobile", Username=deleted["username"])
    cognito.forgot_password(ClientId="mobile", Username=disabled["username"])
    earlier = {"deleted": smtp.code_for(deleted_address), "disabled": smtp.code_for(disabled_address)}
    # ...then the Kii user is deleted by a delivery, the native one disabled by support.
    delete_as_the_importer_does(live_service["app"], master_admin, deleted)
    current = master_admin.get_user(disabled["id"])
    master_admin.update_user(disabled["id"], {**current, "enabled": False})

    # A code mailed before sets no password now...
    for name, user in (("deleted", deleted), ("disabled", disabled)):
        assert error_of(lambda: cognito.confirm_forgot_password(
            ClientId="mobile", Username=user["username"], ConfirmationCode=earlier[name],
            Password="Taken-Over-1")) == MISMATCH
    assert passwords_of(master_admin, deleted["id"]) == []
    assert passwords_of(master_admin, disabled["id"]) == password_before
    # ...and no new code is sent: the answer an unknown name gets.
    unknown = cognito.forgot_password(ClientId="mobile", Username=f"nobody-{uuid.uuid4().hex[:8]}")
    for user in (deleted, disabled):
        answer = delivery(cognito.forgot_password(ClientId="mobile", Username=user["username"]))
        assert looks_delivered(answer) and looks_delivered(delivery(unknown)), answer
    unconfirmed_address = mailbox("unconfirmed-disabled")
    unconfirmed = kc_user(email=unconfirmed_address, emailVerified=False, enabled=False, password="Disabled-Pass-1",
                          requiredActions=["VERIFY_EMAIL"])
    assert looks_delivered(delivery(cognito.resend_confirmation_code(ClientId="mobile",
                                                                     Username=unconfirmed["username"])))
    settle_mail(live_service)
    assert len(smtp.to(deleted_address)) == 1 and len(smtp.to(disabled_address)) == 1
    assert smtp.to(unconfirmed_address) == []


# --- point 9: unknown and existing users look alike ------------------------------------------------------------


def test_unknown_names_get_plausible_destinations(cognito, live_service, smtp):
    # An email typed as the username: a real account found by it would show these initials.
    typed = f"zed.{uuid.uuid4().hex[:6]}@qq.com"
    assert delivery(cognito.forgot_password(ClientId="mobile", Username=typed))["CodeDeliveryDetails"][
        "Destination"] == "z***@q***"
    answers = [delivery(cognito.forgot_password(ClientId="mobile", Username=f"ghost-{i}-of-the-suite"))
               for i in range(40)]
    assert all(looks_delivered(a) for a in answers), answers
    destinations = [a["CodeDeliveryDetails"]["Destination"] for a in answers]
    # Initials as addresses have them, not hex digits (0-9, a-f) only.
    assert not set(d[0] for d in destinations) <= set("0123456789abcdef")
    assert not set(d[5] for d in destinations) <= set("0123456789abcdef")
    # Deterministic: the same name always shows the same initials; a phone number however it is written.
    assert delivery(cognito.forgot_password(ClientId="mobile", Username="ghost-0-of-the-suite")) == answers[0]
    phone = f"1391{uuid.uuid4().int % 10**7:07d}"
    assert delivery(cognito.forgot_password(ClientId="mobile", Username=phone)) == \
        delivery(cognito.forgot_password(ClientId="mobile", Username=f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}"))


def test_an_unverified_address_answers_as_an_unknown_name_and_gets_nothing(cognito, live_service, kc_user, smtp):
    address = mailbox("unverified")
    user = kc_user(email=address, emailVerified=False, password="Unverified-Pass-1")
    answer = delivery(cognito.forgot_password(ClientId="mobile", Username=user["username"]))
    assert looks_delivered(answer), answer
    settle_mail(live_service)
    assert smtp.to(address) == []


def test_limit_exceeded_is_reached_by_unknown_names_too(cognito):
    phone = f"1392{uuid.uuid4().int % 10**7:07d}"
    spellings = [phone, f"+86{phone}", f"+86 {phone[:3]}-{phone[3:7]}-{phone[7:]}", f"+86 {phone[:3]} {phone[3:]}",
                 phone]
    for spelling in spellings:  # one normalised name however it is written
        assert looks_delivered(delivery(cognito.forgot_password(ClientId="mobile", Username=spelling)))
    assert error_of(lambda: cognito.forgot_password(ClientId="mobile", Username=phone)) == LIMIT
    name = f"nobody-{uuid.uuid4().hex[:8]}"
    for _ in range(5):
        cognito.resend_confirmation_code(ClientId="mobile", Username=name)
    assert error_of(lambda: cognito.resend_confirmation_code(ClientId="mobile", Username=name)) == LIMIT


def test_confirmed_users_answer_as_unknown_names(cognito, live_service, kc_user, smtp):
    address = mailbox("confirmed")
    user = kc_user(email=address, emailVerified=True, password="Confirmed-Pass-1")
    unknown = f"nobody-{uuid.uuid4().hex[:8]}"
    answer = delivery(cognito.resend_confirmation_code(ClientId="mobile", Username=user["username"]))
    assert looks_delivered(answer) and answer["CodeDeliveryDetails"]["Destination"] == mask(address)
    assert looks_delivered(delivery(cognito.resend_confirmation_code(ClientId="mobile", Username=unknown)))
    for name in (user["username"], unknown):
        assert error_of(lambda: cognito.confirm_sign_up(ClientId="mobile", Username=name,
                                                        ConfirmationCode="123456")) == MISMATCH
        assert error_of(lambda: cognito.confirm_forgot_password(
            ClientId="mobile", Username=name, ConfirmationCode="123456", Password="New-Password-1")) == MISMATCH
    settle_mail(live_service)
    assert smtp.to(address) == []


def test_existence_errors_can_be_turned_off(realm, database_url, live_service):
    plain = live_app(realm, database_url, free_port(), PREVENT_USER_EXISTENCE_ERRORS=False)
    response = plain.test_client().post("/", json={"ClientId": "mobile", "Username": f"nobody-{uuid.uuid4().hex}"},
                                        headers={"X-Amz-Target": TARGET + "ForgotPassword"})
    assert (response.status_code, response.get_json(force=True)) == (400, {
        "__type": "UserNotFoundException", "message": "Username/client id combination not found."})


def test_timing_does_not_tell_unknown_names_from_users(cognito, live_service, legacy_user, kc_user, smtp):
    """With a mail server that takes its time, ForgotPassword, ResendConfirmationCode and
    ConfirmForgotPassword answer unknown names and existing users in the same time (medians)."""
    rounds, per_group = 12, 3  # each user gets rounds / per_group codes: within the hourly limit
    groups = {
        "unknown": [f"nobody-{uuid.uuid4().hex[:8]}" for _ in range(rounds)],
        "native": [kc_user(email=mailbox("t-native"), emailVerified=True, password="Timing-Pass-1")["username"]
                   for _ in range(per_group)],
        "kii": [legacy_user(email=mailbox("t-kii"))["username"] for _ in range(per_group)],
        "unverified": [kc_user(email=mailbox("t-unverified"), emailVerified=False)["username"]
                       for _ in range(per_group)],
    }
    unconfirmed = [kc_user(email=mailbox("t-unconfirmed"), emailVerified=False, password="Timing-Pass-1",
                           requiredActions=["VERIFY_EMAIL"])["username"] for _ in range(per_group)]

    def timed(call) -> float:
        started = time.perf_counter()
        try:
            call()
        except Exception as exc:  # an error answer is timed as well; its content is checked elsewhere
            assert exc.response["Error"]["Code"] == "CodeMismatchException", exc
        return time.perf_counter() - started

    def rotated(names: list, round_: int) -> list:  # each kind of user in every position, in turn
        return names[round_ % len(names):] + names[:round_ % len(names)]

    forgot = {name: [] for name in groups}
    resend = {"unknown": [], "unconfirmed": []}
    confirm = {"unknown": [], "native": []}
    smtp.delay = 0.3
    try:
        for round_ in range(rounds):
            for name in rotated(list(groups), round_):
                username = groups[name][round_ % len(groups[name])]
                forgot[name].append(timed(lambda: cognito.forgot_password(ClientId="mobile", Username=username)))
        for round_ in range(rounds):
            for name in rotated(list(resend), round_):
                username = unconfirmed[round_ % per_group] if name == "unconfirmed" else f"nobody-r-{uuid.uuid4().hex}"
                resend[name].append(timed(lambda: cognito.resend_confirmation_code(ClientId="mobile",
                                                                                   Username=username)))
            for name in rotated(list(confirm), round_):
                username = groups[name][round_ % per_group]
                confirm[name].append(timed(lambda: cognito.confirm_forgot_password(
                    ClientId="mobile", Username=username, ConfirmationCode="000000", Password="Timing-Pass-2")))
    finally:
        settle_mail(live_service)
        smtp.delay = 0.0
    for samples in (forgot, resend, confirm):
        medians = {name: round(statistics.median(values) * 1000) for name, values in samples.items()}
        assert max(medians.values()) - min(medians.values()) <= 40, f"medians in ms: {medians}"
