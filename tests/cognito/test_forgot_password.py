"""ForgotPassword / ConfirmForgotPassword through boto3, codes read from a real SMTP server on loopback."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from identity.codes.models import VerificationCode
from identity.db import db
from identity.legacy.models import MigrationState
from tests.cognito.fixtures import free_port, live_app, settle_mail, store_row
from tests.cognito.test_sign_in import error_of, sign_in


def test_round_trip_for_a_kii_user_who_never_signed_in(cognito, live_service, legacy_user, smtp):
    user = legacy_user(password="Kii-Forgotten-1", email="forgot@example.com")
    delivery = cognito.forgot_password(ClientId="mobile", Username=user["username"])["CodeDeliveryDetails"]
    assert delivery == {"Destination": "f***@e***", "DeliveryMedium": "EMAIL", "AttributeName": "email"}
    message = smtp.next_to("forgot@example.com")
    assert message["Subject"] == "您的密码重置验证码"  # no locale: Simplified Chinese
    code = smtp.code_of(message)

    cognito.confirm_forgot_password(ClientId="mobile", Username="forgot@example.com", ConfirmationCode=code,
                                    Password="New-Password-2026")
    row = store_row(live_service["app"], user["kii_user_id"])
    assert row.state == MigrationState.migrated and row.password_hash is None  # the legacy hash is gone for good
    assert sign_in(cognito, user["username"], "New-Password-2026")["AuthenticationResult"]
    assert error_of(lambda: sign_in(cognito, user["username"], "Kii-Forgotten-1"))[0] == "NotAuthorizedException"
    # Single use.
    assert error_of(lambda: cognito.confirm_forgot_password(
        ClientId="mobile", Username=user["username"], ConfirmationCode=code, Password="Another-Pass-1"))[0] == \
        "CodeMismatchException"
    with live_service["app"].app_context():
        stored = db.session.scalars(sa.select(VerificationCode.code_hash)).all()
    assert code not in stored and all(len(h) == 64 for h in stored)  # codes are kept hashed


def test_english_template_wrong_code_and_policy(cognito, kc_user, smtp):
    user = kc_user(email="english@example.com", emailVerified=True, password="Old-Password-1",
                   attributes={"locale": ["en"]})
    cognito.forgot_password(ClientId="mobile", Username=user["username"])
    message = smtp.next_to("english@example.com")
    assert message["Subject"] == "Your password reset code"
    code = smtp.code_of(message)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert error_of(lambda: cognito.confirm_forgot_password(
        ClientId="mobile", Username=user["username"], ConfirmationCode=wrong, Password="New-Password-1")) == \
        ("CodeMismatchException", "Invalid verification code provided, please try again.")
    assert error_of(lambda: cognito.confirm_forgot_password(
        ClientId="mobile", Username=user["username"], ConfirmationCode=code, Password="short"))[0] == \
        "InvalidPasswordException"
    # The policy refusal did not use up the code.
    cognito.confirm_forgot_password(ClientId="mobile", Username=user["username"], ConfirmationCode=code,
                                    Password="New-Password-1")
    assert sign_in(cognito, user["username"], "New-Password-1")["AuthenticationResult"]


def test_attempts_and_rate_are_limited(cognito, kc_user, smtp):
    user = kc_user(email="limits@example.com", emailVerified=True, password="Old-Password-1")
    cognito.forgot_password(ClientId="mobile", Username=user["username"])
    code = smtp.code_for("limits@example.com")
    wrong = f"{(int(code) + 7) % 10**6:06d}"
    for _ in range(5):
        assert error_of(lambda: cognito.confirm_forgot_password(
            ClientId="mobile", Username=user["username"], ConfirmationCode=wrong, Password="New-Pass-12"))[0] == \
            "CodeMismatchException"
    assert error_of(lambda: cognito.confirm_forgot_password(
        ClientId="mobile", Username=user["username"], ConfirmationCode=code, Password="New-Pass-12"))[0] == \
        "LimitExceededException"  # the right code no longer works either
    for _ in range(4):
        cognito.forgot_password(ClientId="mobile", Username=user["username"])
    assert error_of(lambda: cognito.forgot_password(ClientId="mobile", Username=user["username"]))[0] == \
        "LimitExceededException"


def test_expired_code(app, realm, database_url, kc_user, smtp, cognito):
    user = kc_user(email="expired@example.com", emailVerified=True, password="Old-Password-1")
    cognito.forgot_password(ClientId="mobile", Username=user["username"])
    code = smtp.code_for("expired@example.com")
    with app.app_context():
        db.session.execute(sa.update(VerificationCode).values(expires_at=sa.func.current_timestamp()))
        db.session.commit()
    assert error_of(lambda: cognito.confirm_forgot_password(
        ClientId="mobile", Username=user["username"], ConfirmationCode=code, Password="New-Password-1"))[0] == \
        "ExpiredCodeException"


def test_unknown_user_is_not_revealed_and_no_mail_goes_out(cognito, live_service, smtp):
    before = len(smtp.messages)
    delivery = cognito.forgot_password(ClientId="mobile", Username="nobody-here")["CodeDeliveryDetails"]
    assert delivery["DeliveryMedium"] == "EMAIL" and "***@" in delivery["Destination"]
    settle_mail(live_service)
    assert len(smtp.messages) == before


def test_send_failure_does_not_reach_the_app(realm, database_url, kc_user):
    """Mail leaves after the answer: a delivery failure is logged and counted, never answered
    (tests/cognito/test_codes_security.py shows the undelivered code withdrawn)."""
    user = kc_user(email="nomail@example.com", emailVerified=True, password="Old-Password-1")
    broken = live_app(realm, database_url, free_port(), SMTP_HOST="127.0.0.1", SMTP_PORT=free_port(),
                      SMTP_TIMEOUT=2)
    response = broken.test_client().post("/", json={"ClientId": "mobile", "Username": user["username"]},
                                         headers={"X-Amz-Target": "AWSCognitoIdentityProviderService.ForgotPassword"})
    assert response.status_code == 200
    assert response.get_json(force=True)["CodeDeliveryDetails"]["Destination"] == "n***@e***"
    settle_mail({"app": broken})


@pytest.mark.parametrize("username", ["nobody-here"])
def test_confirm_for_unknown_user(cognito, username):
    assert error_of(lambda: cognito.confirm_forgot_password(
        ClientId="mobile", Username=username, ConfirmationCode="123456", Password="Whatever-1"))[0] == \
        "CodeMismatchException"
