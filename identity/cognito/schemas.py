"""Request bodies of the JSON API, validated with marshmallow.

Fields the apps may send that the service does not use (AnalyticsMetadata,
UserContextData, ClientMetadata, ...) are accepted and ignored, as Cognito
does; a missing or mistyped field is an InvalidParameterException naming it.
"""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from identity.cognito.errors import InvalidParameterError

NonEmpty = validate.Length(min=1, max=2048)


def _text(value: str) -> None:
    # A new password with a lone surrogate has no UTF-8 form: nobody could ever type it again.
    # (A password being checked is not refused here: it is a wrong password, identity.legacy.hashes.)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("Member must be text (no lone surrogate)") from None


NewPassword = [validate.Length(min=1, max=256), _text]


class _Base(Schema):
    class Meta:
        unknown = EXCLUDE


class InitiateAuthSchema(_Base):
    AuthFlow = fields.String(required=True, validate=validate.Length(min=1, max=64))
    ClientId = fields.String(required=True, validate=validate.Length(min=1, max=128))
    AuthParameters = fields.Dict(keys=fields.String(), values=fields.String(validate=validate.Length(max=8192)),
                                 load_default=dict)


class RespondToAuthChallengeSchema(_Base):
    ChallengeName = fields.String(required=True, validate=validate.Length(min=1, max=64))
    ClientId = fields.String(required=True, validate=validate.Length(min=1, max=128))
    ChallengeResponses = fields.Dict(keys=fields.String(), values=fields.String(validate=validate.Length(max=8192)),
                                     load_default=dict)
    Session = fields.String(validate=validate.Length(min=20, max=2048))


class NewPasswordSchema(_Base):
    NEW_PASSWORD = fields.String(required=True, validate=NewPassword)


class GetTokensFromRefreshTokenSchema(_Base):
    RefreshToken = fields.String(required=True, validate=validate.Length(min=1, max=16384))
    ClientId = fields.String(required=True, validate=validate.Length(min=1, max=128))
    ClientSecret = fields.String(validate=validate.Length(min=1, max=256))


class AccessTokenSchema(_Base):
    AccessToken = fields.String(required=True, validate=validate.Length(min=1, max=16384))


class RevokeTokenSchema(_Base):
    Token = fields.String(required=True, validate=validate.Length(min=1, max=16384))
    ClientId = fields.String(required=True, validate=validate.Length(min=1, max=128))
    ClientSecret = fields.String(validate=validate.Length(min=1, max=256))


class ForgotPasswordSchema(_Base):
    ClientId = fields.String(required=True, validate=validate.Length(min=1, max=128))
    Username = fields.String(required=True, validate=validate.Length(min=1, max=128))
    SecretHash = fields.String(validate=validate.Length(min=1, max=128))


class ConfirmForgotPasswordSchema(ForgotPasswordSchema):
    ConfirmationCode = fields.String(required=True, validate=validate.Length(min=1, max=2048))
    Password = fields.String(required=True, validate=NewPassword)


class AttributeSchema(_Base):
    Name = fields.String(required=True, validate=validate.Length(min=1, max=80))
    Value = fields.String(required=True, validate=validate.Length(max=2048))


class SignUpSchema(_Base):
    ClientId = fields.String(required=True, validate=validate.Length(min=1, max=128))
    Username = fields.String(required=True, validate=validate.Length(min=1, max=128))
    Password = fields.String(required=True, validate=NewPassword)
    UserAttributes = fields.List(fields.Nested(AttributeSchema), load_default=list)
    SecretHash = fields.String(validate=validate.Length(min=1, max=128))


class ConfirmSignUpSchema(ForgotPasswordSchema):
    ConfirmationCode = fields.String(required=True, validate=validate.Length(min=1, max=2048))


class ChangePasswordSchema(AccessTokenSchema):
    PreviousPassword = fields.String(required=True, validate=validate.Length(min=1, max=256))
    ProposedPassword = fields.String(required=True, validate=NewPassword)


class UpdateUserAttributesSchema(AccessTokenSchema):
    UserAttributes = fields.List(fields.Nested(AttributeSchema), required=True)


class VerifyUserAttributeSchema(AccessTokenSchema):
    AttributeName = fields.String(required=True, validate=validate.Length(min=1, max=80))
    Code = fields.String(required=True, validate=validate.Length(min=1, max=2048))


class AttributeNameSchema(AccessTokenSchema):
    AttributeName = fields.String(required=True, validate=validate.Length(min=1, max=80))


class DeleteUserAttributesSchema(AccessTokenSchema):
    UserAttributeNames = fields.List(fields.String(validate=validate.Length(min=1, max=80)), required=True,
                                     validate=validate.Length(min=1, max=64))


class AssociateSoftwareTokenSchema(_Base):
    AccessToken = fields.String(validate=validate.Length(min=1, max=16384))
    Session = fields.String(validate=validate.Length(min=20, max=2048))


class VerifySoftwareTokenSchema(AssociateSoftwareTokenSchema):
    UserCode = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{6}$", error="UserCode must be 6 digits"))
    FriendlyDeviceName = fields.String(validate=validate.Length(max=131))


class MfaSettingsSchema(_Base):
    Enabled = fields.Boolean()
    PreferredMfa = fields.Boolean()


class SetUserMfaPreferenceSchema(AccessTokenSchema):
    SoftwareTokenMfaSettings = fields.Nested(MfaSettingsSchema)
    SMSMfaSettings = fields.Nested(MfaSettingsSchema)
    EmailMfaSettings = fields.Nested(MfaSettingsSchema)


class AdminUserSchema(_Base):
    UserPoolId = fields.String(required=True, validate=validate.Length(min=1, max=55))
    Username = fields.String(required=True, validate=validate.Length(min=1, max=128))


class AdminSetUserPasswordSchema(AdminUserSchema):
    Password = fields.String(required=True, validate=NewPassword)
    Permanent = fields.Boolean(load_default=False)


Limit = fields.Integer(validate=validate.Range(min=0, max=60), strict=True)
Token = fields.String(validate=validate.Length(min=1, max=4096))
GroupName = fields.String(required=True, validate=validate.Length(min=1, max=128))


class AdminCreateUserSchema(AdminUserSchema):
    UserAttributes = fields.List(fields.Nested(AttributeSchema), load_default=list)
    TemporaryPassword = fields.String(validate=NewPassword)
    MessageAction = fields.String(validate=validate.OneOf(["RESEND", "SUPPRESS"]))
    DesiredDeliveryMediums = fields.List(fields.String(validate=validate.OneOf(["SMS", "EMAIL"])))
    ForceAliasCreation = fields.Boolean()


class AdminUpdateUserAttributesSchema(AdminUserSchema):
    UserAttributes = fields.List(fields.Nested(AttributeSchema), required=True)


class AdminDeleteUserAttributesSchema(AdminUserSchema):
    UserAttributeNames = fields.List(fields.String(validate=validate.Length(min=1, max=80)), required=True,
                                     validate=validate.Length(min=1, max=64))


class AdminInitiateAuthSchema(InitiateAuthSchema):
    UserPoolId = fields.String(required=True, validate=validate.Length(min=1, max=55))


class AdminRespondToAuthChallengeSchema(RespondToAuthChallengeSchema):
    UserPoolId = fields.String(required=True, validate=validate.Length(min=1, max=55))


class ListUsersSchema(_Base):
    UserPoolId = fields.String(required=True, validate=validate.Length(min=1, max=55))
    AttributesToGet = fields.List(fields.String(validate=validate.Length(min=1, max=80)))
    Limit = Limit
    PaginationToken = Token
    Filter = fields.String(validate=validate.Length(max=256))


class AdminGroupSchema(AdminUserSchema):
    GroupName = GroupName


class AdminListGroupsForUserSchema(AdminUserSchema):
    Limit = Limit
    NextToken = Token


class ListUsersInGroupSchema(_Base):
    UserPoolId = fields.String(required=True, validate=validate.Length(min=1, max=55))
    GroupName = GroupName
    Limit = Limit
    NextToken = Token


def load(schema: Schema, body) -> dict:
    if not isinstance(body, dict):
        raise InvalidParameterError("The request body must be a JSON object.")
    try:
        return schema.load(body)
    except ValidationError as exc:
        field, problems = next(iter(sorted(exc.messages.items())))
        problem = problems[0] if isinstance(problems, list) and problems else problems
        if isinstance(problem, dict):  # a nested field (AuthParameters.X)
            inner, inner_problems = next(iter(problem.items()))
            field, problem = f"{field}.{inner}", str(inner_problems)
        if problem == "Missing data for required field.":
            problem = "Member must not be null"
        count = len(exc.messages)
        raise InvalidParameterError(
            f"{count} validation error{'s' if count > 1 else ''} detected: Value at '{field}' failed to satisfy "
            f"constraint: {problem}") from None
