"""Sign-up, change of password and attributes, deletion: through boto3 and a real SMTP server."""

from __future__ import annotations

import uuid

from tests.cognito.fixtures import store_row
from tests.conftest import TEST_REALM
from tests.cognito.test_sign_in import error_of, sign_in


def new_name() -> str:
    return f"signup-{uuid.uuid4().hex[:10]}"


def test_sign_up_round_trip(cognito, smtp, master_admin):
    name = new_name()
    email = f"{name}@example.com"
    response = cognito.sign_up(ClientId="mobile", Username=name, Password="Sign-Up-Pass-1", UserAttributes=[
        {"Name": "email", "Value": email}, {"Name": "locale", "Value": "en"},
        {"Name": "custom:deviceModel", "Value": "BP-300"}])
    assert response["UserConfirmed"] is False and response["UserSub"]
    assert response["CodeDeliveryDetails"]["Destination"] == "s***@e***"
    first = smtp.next_to(email)
    assert first["Subject"] == "Your verification code"
    # Not confirmed yet: the right password says so, a wrong one does not.
    assert error_of(lambda: sign_in(cognito, name, "Sign-Up-Pass-1")) == \
        ("UserNotConfirmedException", "User is not confirmed.")
    assert error_of(lambda: sign_in(cognito, name, "wrong"))[0] == "NotAuthorizedException"

    wrong = f"{(int(smtp.code_of(first)) + 1) % 10**6:06d}"
    assert error_of(lambda: cognito.confirm_sign_up(ClientId="mobile", Username=name, ConfirmationCode=wrong))[0] \
        == "CodeMismatchException"
    resent = cognito.resend_confirmation_code(ClientId="mobile", Username=name)
    assert resent["CodeDeliveryDetails"]["Destination"] == "s***@e***"
    # The resent code arrived, as a second mail (code_for waits for a mail not read before).
    code = smtp.code_for(email)
    assert len(smtp.to(email)) == 2
    # The first code was superseded by the resent one.
    assert error_of(lambda: cognito.confirm_sign_up(ClientId="mobile", Username=name,
                                                    ConfirmationCode=smtp.code_of(first)))[0] == \
        "CodeMismatchException"
    cognito.confirm_sign_up(ClientId="mobile", Username=name, ConfirmationCode=code)
    tokens = sign_in(cognito, name, "Sign-Up-Pass-1")["AuthenticationResult"]
    me = cognito.get_user(AccessToken=tokens["AccessToken"])
    assert {"Name": "custom:deviceModel", "Value": "BP-300"} in me["UserAttributes"]
    assert {"Name": "email_verified", "Value": "true"} in me["UserAttributes"]
    master_admin.delete_user(response["UserSub"])


def test_sign_up_refuses_taken_names_and_weak_passwords(cognito, legacy_user, kc_user):
    kii = legacy_user(email="kii-taken@example.com")
    assert error_of(lambda: cognito.sign_up(ClientId="mobile", Username=kii["username"], Password="Sign-Up-Pass-1",
                                            UserAttributes=[{"Name": "email", "Value": "x1@example.com"}]))[0] == \
        "UsernameExistsException"
    assert error_of(lambda: cognito.sign_up(ClientId="mobile", Username=new_name(), Password="Sign-Up-Pass-1",
                                            UserAttributes=[{"Name": "email", "Value": "KII-taken@example.com"}]))[0] \
        == "UsernameExistsException"
    native = kc_user(email="native-taken@example.com", password="Native-Pass-1")
    assert error_of(lambda: cognito.sign_up(ClientId="mobile", Username=native["username"],
                                            Password="Sign-Up-Pass-1",
                                            UserAttributes=[{"Name": "email", "Value": "x2@example.com"}]))[0] == \
        "UsernameExistsException"
    assert error_of(lambda: cognito.sign_up(ClientId="mobile", Username=new_name(), Password="short",
                                            UserAttributes=[{"Name": "email", "Value": "x3@example.com"}]))[0] == \
        "InvalidPasswordException"


def test_change_password_and_attributes(cognito, kc_user, smtp, master_admin):
    user = kc_user(email="change@example.com", emailVerified=True, password="Old-Password-1")
    token = sign_in(cognito, user["username"], "Old-Password-1")["AuthenticationResult"]["AccessToken"]
    # Each call follows the previous login of the same user within milliseconds: Keycloak may still
    # be recording it, and the service must tell that from a wrong previous password.
    assert error_of(lambda: cognito.change_password(PreviousPassword="wrong", ProposedPassword="New-Password-1",
                                                    AccessToken=token)) == \
        ("NotAuthorizedException", "Incorrect username or password.")
    assert error_of(lambda: cognito.change_password(PreviousPassword="Old-Password-1", ProposedPassword="short",
                                                    AccessToken=token))[0] == "InvalidPasswordException"
    cognito.change_password(PreviousPassword="Old-Password-1", ProposedPassword="New-Password-1", AccessToken=token)
    # The previous password's checks left no session behind: only the sign-in's.
    master_admin.change_current_realm(TEST_REALM)
    assert len(master_admin.get_sessions(user["id"])) == 1
    token = sign_in(cognito, user["username"], "New-Password-1")["AuthenticationResult"]["AccessToken"]

    result = cognito.update_user_attributes(AccessToken=token, UserAttributes=[
        {"Name": "email", "Value": "changed@example.com"}, {"Name": "name", "Value": "新名字"}])
    assert result["CodeDeliveryDetailsList"][0]["Destination"] == "c***@e***"
    attributes = {a["Name"]: a["Value"] for a in cognito.get_user(AccessToken=token)["UserAttributes"]}
    assert attributes["email"] == "changed@example.com" and attributes["email_verified"] == "false"
    assert attributes["name"] == "新名字"
    cognito.verify_user_attribute(AccessToken=token, AttributeName="email",
                                  Code=smtp.code_for("changed@example.com"))
    attributes = {a["Name"]: a["Value"] for a in cognito.get_user(AccessToken=token)["UserAttributes"]}
    assert attributes["email_verified"] == "true"


def test_delete_user_removes_keycloak_user_and_legacy_row(cognito, live_service, legacy_user, master_admin):
    user = legacy_user()
    token = sign_in(cognito, user["username"], user["password"])["AuthenticationResult"]["AccessToken"]
    cognito.delete_user(AccessToken=token)
    assert error_of(lambda: sign_in(cognito, user["username"], user["password"]))[0] == "NotAuthorizedException"
    assert store_row(live_service["app"], user["kii_user_id"]) is None
    assert master_admin.get_users({"username": user["username"], "exact": True}) == []


def test_get_user_attribute_verification_code_and_delete_user_attributes(cognito, kc_user, smtp):
    user = kc_user(email="attrs@example.com", emailVerified=False, password="Attr-Password-1",
                   attributes={"phone_number": ["+8613800138000"], "phone_number_verified": ["true"],
                               "name": ["名字"], "custom.device": ["cuff-1"]})
    token = sign_in(cognito, user["username"], "Attr-Password-1")["AuthenticationResult"]["AccessToken"]

    sent = cognito.get_user_attribute_verification_code(AccessToken=token, AttributeName="email")
    assert sent["CodeDeliveryDetails"] == {"Destination": "a***@e***", "DeliveryMedium": "EMAIL",
                                           "AttributeName": "email"}
    cognito.verify_user_attribute(AccessToken=token, AttributeName="email", Code=smtp.code_for("attrs@example.com"))
    attributes = {a["Name"]: a["Value"] for a in cognito.get_user(AccessToken=token)["UserAttributes"]}
    assert attributes["email_verified"] == "true"
    assert error_of(lambda: cognito.get_user_attribute_verification_code(
        AccessToken=token, AttributeName="phone_number"))[0] == "InvalidParameterException"

    cognito.delete_user_attributes(AccessToken=token, UserAttributeNames=["phone_number", "custom:device"])
    attributes = {a["Name"]: a["Value"] for a in cognito.get_user(AccessToken=token)["UserAttributes"]}
    assert "phone_number" not in attributes and "phone_number_verified" not in attributes
    assert "custom:device" not in attributes and attributes["name"] == "名字"
    assert attributes["email"] == "attrs@example.com"
    for name in ("email", "sub", "custom:kii_user_id", "no_such_attribute"):
        assert error_of(lambda: cognito.delete_user_attributes(AccessToken=token, UserAttributeNames=[name]))[0] \
            == "InvalidParameterException"
    assert error_of(lambda: cognito.delete_user_attributes(AccessToken="not-a-token",
                                                           UserAttributeNames=["name"]))[0] == \
        "NotAuthorizedException"
