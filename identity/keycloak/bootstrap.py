"""`identity keycloak bootstrap`: make the realm look like config/keycloak/*.json.

Idempotent by construction: every resource is read, compared with the
desired representation (only the fields the files set), and written only
when it differs. The return value lists what changed, so a second run
reports nothing, and a test holds it to that.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urljoin

import requests
from keycloak import KeycloakAdmin

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "keycloak"
_PLACEHOLDER = re.compile(r"{{(\w+)}}")


@dataclass
class Settings:
    server_url: str
    realm: str
    app_client_id: str
    app_redirect_uris: list[str]
    admin_client_id: str
    admin_client_secret: str
    realm_display_name: str = "健康账户"
    bridge_url: str = "http://127.0.0.1:8000/bridge/v1"
    # Keycloak's own mails (a reset email sent from the console, "forgot password" at the login page).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_tls: bool = False
    mail_from: str = "no-reply@example.cn"
    # Confidential app clients (IDENTITY_APP_CLIENT_SECRETS): client id -> secret.
    app_client_secrets: dict[str, str] = field(default_factory=dict)
    # The Cognito user pool id the apps are configured with: the tokens' issuer is {base}/{it}.
    user_pool_id: str = "cn-north-1_china"
    config_dir: Path = CONFIG_DIR

    @classmethod
    def from_app_config(cls, cfg) -> "Settings":
        return cls(
            server_url=cfg["KEYCLOAK_URL"],
            realm=cfg["KEYCLOAK_REALM"],
            app_client_id=cfg["KEYCLOAK_APP_CLIENT_ID"],
            app_redirect_uris=list(cfg["KEYCLOAK_APP_REDIRECT_URIS"]),
            admin_client_id=cfg["KEYCLOAK_ADMIN_CLIENT_ID"],
            admin_client_secret=cfg["KEYCLOAK_ADMIN_CLIENT_SECRET"],
            bridge_url=cfg.get("BRIDGE_URL") or f"{cfg['PUBLIC_BASE_URL'].rstrip('/')}/bridge/v1",
            realm_display_name=cfg.get("REALM_DISPLAY_NAME") or cls.realm_display_name,
            smtp_host=cfg["SMTP_HOST"], smtp_port=int(cfg["SMTP_PORT"]), smtp_starttls=bool(cfg["SMTP_STARTTLS"]),
            smtp_tls=bool(cfg["SMTP_TLS"]), mail_from=cfg["MAIL_FROM"],
            app_client_secrets={str(k): str(v) for k, v in dict(cfg["APP_CLIENT_SECRETS"] or {}).items()},
            user_pool_id=cfg["USER_POOL_ID"],
        )


@dataclass
class Changes:
    items: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.items.append(text)

    def __bool__(self) -> bool:
        return bool(self.items)


def load_template(name: str, settings: Settings):
    """Read config/keycloak/<name> and fill its {{placeholders}} (JSON-escaped)."""
    values = {
        "realm": settings.realm,
        "realm_display_name": settings.realm_display_name,
        "app_client_id": settings.app_client_id,
        "app_redirect_uris": settings.app_redirect_uris,
        "admin_client_id": settings.admin_client_id,
        "admin_client_secret": settings.admin_client_secret,
        # Keycloak's realm API keeps these as strings.
        "smtp_host": settings.smtp_host, "smtp_port": str(settings.smtp_port), "mail_from": settings.mail_from,
        "smtp_starttls": str(settings.smtp_starttls).lower(), "smtp_tls": str(settings.smtp_tls).lower(),
        "user_pool_id": settings.user_pool_id,
    }

    def fill(match: re.Match) -> str:
        value = values[match.group(1)]  # an unknown placeholder is a bug in config/: KeyError
        return json.dumps(value)[1:-1] if isinstance(value, str) else json.dumps(value)

    text = (settings.config_dir / name).read_text(encoding="utf-8")
    return json.loads(_PLACEHOLDER.sub(fill, text))


def desired_clients(settings: Settings) -> list[dict]:
    """config/keycloak/clients.json, and each client declared with a secret: the app client's own entry
    (its mappers and scopes, so its tokens carry the same claims) made confidential, with its id and secret."""
    clients = load_template("clients.json", settings)
    for client_id, secret in sorted(settings.app_client_secrets.items()):
        if client_id in (settings.app_client_id, settings.admin_client_id):
            raise ValueError(f"IDENTITY_APP_CLIENT_SECRETS names client {client_id}, which is not an app client "
                             "with a secret")
        if not secret:
            raise ValueError(f"IDENTITY_APP_CLIENT_SECRETS: client {client_id} has an empty secret")
        own = replace(settings, app_client_id=client_id)
        entry = next(c for c in load_template("clients.json", own) if c["clientId"] == client_id)
        clients.append({**entry, "name": f"App client {client_id}",
                        "description": "Confidential app client (IDENTITY_APP_CLIENT_SECRETS): the app client's "
                                       "token contract, with a secret",
                        "publicClient": False, "clientAuthenticatorType": "client-secret", "secret": secret})
    return clients


def differs(desired, actual) -> bool:
    """True when `actual` lacks anything `desired` sets (extra fields in `actual` are fine)."""
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return True
        return any(differs(value, actual.get(key)) for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(desired) != len(actual):
            return True
        if all(isinstance(x, dict) and "name" in x for x in desired):
            by_name = {x.get("name"): x for x in actual if isinstance(x, dict)}
            return any(differs(x, by_name.get(x["name"])) for x in desired)
        return sorted(map(json.dumps, desired)) != sorted(map(json.dumps, actual))
    return desired != actual


def connect(settings: Settings, username: str, password: str) -> KeycloakAdmin:
    admin = KeycloakAdmin(server_url=settings.server_url + "/", username=username, password=password,
                          realm_name="master", user_realm_name="master", timeout=30)
    return admin


def bootstrap(admin: KeycloakAdmin, settings: Settings) -> list[str]:
    changes = Changes()
    clients = desired_clients(settings)  # a wrong declaration stops the run before anything is written
    _realm(admin, settings, changes)
    admin.change_current_realm(settings.realm)
    scope_ids = _client_scopes(admin, settings, changes)
    for desired in clients:
        _client(admin, desired, scope_ids, changes)
    _user_profile(admin, settings, changes)
    _browser_flow(admin, settings, changes)
    _reset_credentials_flow(admin, settings, changes)
    _direct_grant_flow(admin, settings, changes)
    _support_group(admin, settings, changes)
    _migration_caller(admin, settings, changes)
    _localization(admin, settings, changes)
    return changes.items


def _localization(admin: KeycloakAdmin, settings: Settings, changes: Changes) -> None:
    """The realm's own texts (attribute names in the console), set key by key."""
    desired = load_template("localization.json", settings)
    desired.pop("_comment", None)
    base = f"admin/realms/{settings.realm}/localization"
    for locale, texts in desired.items():
        have = admin.connection.raw_get(f"{base}/{locale}").json() or {}
        for key, text in texts.items():
            if have.get(key) != text:
                # A text/plain body, which python-keycloak's raw_put cannot send.
                response = requests.put(urljoin(admin.connection.base_url, f"{base}/{locale}/{key}"),
                                        data=text.encode(), timeout=30,
                                        headers={**admin.connection.headers,
                                                 "Content-Type": "text/plain; charset=utf-8"})
                if response.status_code not in (200, 204):
                    raise RuntimeError(f"localization {locale}/{key}: HTTP {response.status_code}")
                changes.add(f"set realm text {locale}/{key}")


def _support_group(admin: KeycloakAdmin, settings: Settings, changes: Changes) -> None:
    """The support staff's group and its realm-management roles, nothing more (least privilege)."""
    desired = load_template("support-group.json", settings)
    name = desired["name"]
    if desired["oneTimeCodeRole"] not in desired["realmManagementRoles"]:
        # Else the group's members would reach the console without the browser flow's one-time code.
        raise ValueError(f"support-group.json: oneTimeCodeRole {desired['oneTimeCodeRole']!r} is not one of "
                         f"the group's realmManagementRoles")
    group = next((g for g in admin.get_groups({"search": name, "exact": True}) if g["name"] == name), None)
    if group is None:
        admin.create_group({"name": name})
        group = next(g for g in admin.get_groups({"search": name, "exact": True}) if g["name"] == name)
        changes.add(f"created group {name}")
    management = admin.get_client_id("realm-management")
    have = {r["name"] for r in admin.get_group_client_roles(group["id"], management)}
    wanted = desired["realmManagementRoles"]
    missing = [admin.get_client_role(management, role) for role in wanted if role not in have]
    if missing:
        admin.assign_group_client_roles(group["id"], management, missing)
        changes.add(f"granted realm-management roles {sorted(r['name'] for r in missing)} to group {name}")
    surplus = sorted(have - set(wanted))
    if surplus:
        admin.delete_group_client_roles(group["id"], management,
                                        [admin.get_client_role(management, role) for role in surplus])
        changes.add(f"revoked realm-management roles {surplus} from group {name}")


# Realm attributes the provider (keycloak_spi_bridge) reads: the one client whose service account may
# call its legacy-migration endpoint (LegacyMigrationResource; without it, nobody may), and where the
# service's bridge is (SrpVerifierPolicy tells it of each password Keycloak is given).
MIGRATION_CALLER_ATTRIBUTE = "legacyMigrationServiceClient"
BRIDGE_URL_ATTRIBUTE = "legacyBridgeUrl"


def _migration_caller(admin: KeycloakAdmin, settings: Settings, changes: Changes) -> None:
    attributes = dict(admin.get_realm(settings.realm).get("attributes") or {})
    wanted = {MIGRATION_CALLER_ATTRIBUTE: settings.admin_client_id, BRIDGE_URL_ATTRIBUTE: settings.bridge_url}
    changed = sorted(name for name, value in wanted.items() if attributes.get(name) != value)
    if changed:
        # The Admin API drops attributes a realm update leaves out: send them all.
        admin.update_realm(settings.realm, {"attributes": {**attributes, **wanted}})
        changes.add(f"set realm attributes {', '.join(changed)}")


def _realm(admin: KeycloakAdmin, settings: Settings, changes: Changes) -> None:
    desired = load_template("realm.json", settings)
    existing = {r["realm"] for r in admin.get_realms()}
    if settings.realm not in existing:
        admin.create_realm(desired)
        changes.add(f"created realm {settings.realm}")
        return
    actual = admin.get_realm(settings.realm)
    fields = sorted(key for key, value in desired.items() if differs(value, actual.get(key)))
    if fields:
        admin.update_realm(settings.realm, desired)
        changes.add(f"updated realm {settings.realm}: {', '.join(fields)}")


def _sync_mappers(actual_mappers, desired_mappers, add, update, owner: str, changes: Changes) -> None:
    by_name = {m["name"]: m for m in actual_mappers}
    for mapper in desired_mappers:
        current = by_name.get(mapper["name"])
        if current is None:
            add(mapper)
            changes.add(f"added mapper {mapper['name']!r} to {owner}")
        elif differs(mapper, current):
            update(current["id"], {**mapper, "id": current["id"]})
            changes.add(f"updated mapper {mapper['name']!r} of {owner}")


def _client_scopes(admin: KeycloakAdmin, settings: Settings, changes: Changes) -> dict[str, str]:
    scopes = {s["name"]: s for s in admin.get_client_scopes()}
    for desired in load_template("client-scopes.json", settings):
        mappers = desired.pop("protocolMappers", [])
        current = scopes.get(desired["name"])
        if current is None:
            admin.create_client_scope(desired)
            changes.add(f"created client scope {desired['name']}")
            current = next(s for s in admin.get_client_scopes() if s["name"] == desired["name"])
        elif differs(desired, current):
            admin.update_client_scope(current["id"], {**current, **desired})
            changes.add(f"updated client scope {desired['name']}")
        scope_id = current["id"]
        _sync_mappers(
            admin.get_mappers_from_client_scope(scope_id), mappers,
            add=lambda m, sid=scope_id: admin.add_mapper_to_client_scope(sid, m),
            update=lambda mid, m, sid=scope_id: admin.update_mapper_in_client_scope(sid, mid, m),
            owner=f"client scope {desired['name']}", changes=changes)
        scopes[desired["name"]] = current
    return {name: s["id"] for name, s in scopes.items()}


def _client(admin: KeycloakAdmin, desired: dict, scope_ids: dict[str, str], changes: Changes) -> None:
    desired = dict(desired)
    client_id = desired["clientId"]
    mappers = desired.pop("protocolMappers", [])
    default_scopes = desired.pop("defaultClientScopes", [])
    optional_scopes = desired.pop("optionalClientScopes", [])
    service_roles = desired.pop("serviceAccountClientRoles", {})

    uuid = admin.get_client_id(client_id)
    if uuid is None:
        uuid = admin.create_client(desired)
        changes.add(f"created client {client_id}")
    else:
        actual = admin.get_client(uuid)
        fields = sorted(key for key, value in desired.items() if differs(value, actual.get(key)))
        if fields:
            admin.update_client(uuid, {**actual, **desired})
            # Never name the secret's value; its field name is enough.
            changes.add(f"updated client {client_id}: {', '.join(fields)}")

    _sync_mappers(
        admin.get_mappers_from_client(uuid), mappers,
        add=lambda m: admin.add_mapper_to_client(uuid, m),
        update=lambda mid, m: admin.update_client_mapper(uuid, mid, m),
        owner=f"client {client_id}", changes=changes)

    _client_scope_links(admin, uuid, client_id, default_scopes, optional_scopes, scope_ids, changes)
    if service_roles:
        _service_account_roles(admin, uuid, client_id, service_roles, changes)


def _client_scope_links(admin: KeycloakAdmin, uuid: str, client_id: str, default_scopes: list[str],
                        optional_scopes: list[str], scope_ids: dict[str, str], changes: Changes) -> None:
    # Scope links: add what is missing, move what sits in the wrong list.
    for wanted, get, add, remove, other_remove, kind in (
        (default_scopes, admin.get_client_default_client_scopes, admin.add_client_default_client_scope,
         admin.delete_client_default_client_scope, admin.delete_client_optional_client_scope, "default"),
        (optional_scopes, admin.get_client_optional_client_scopes, admin.add_client_optional_client_scope,
         admin.delete_client_optional_client_scope, admin.delete_client_default_client_scope, "optional"),
    ):
        have = {s["name"] for s in get(uuid)}
        for name in wanted:
            if name in have:
                continue
            scope_id = scope_ids[name]
            try:
                other_remove(uuid, scope_id)
            except Exception:  # not linked the other way: nothing to move
                pass
            add(uuid, scope_id, {"realm": admin.connection.realm_name, "client": uuid,
                                 "clientScopeId": scope_id})
            changes.add(f"linked {kind} scope {name} to client {client_id}")
        extra = have - set(wanted)
        for name in sorted(extra):
            remove(uuid, scope_ids[name])
            changes.add(f"unlinked {kind} scope {name} from client {client_id}")


def _service_account_roles(admin: KeycloakAdmin, uuid: str, client_id: str, service_roles: dict,
                           changes: Changes) -> None:
    user = admin.get_client_service_account_user(uuid)
    for role_client, role_names in service_roles.items():
        role_client_uuid = admin.get_client_id(role_client)
        have = {r["name"] for r in admin.get_client_roles_of_user(user["id"], role_client_uuid)}
        missing = [admin.get_client_role(role_client_uuid, name) for name in role_names if name not in have]
        if missing:
            admin.assign_client_role(user["id"], role_client_uuid, missing)
            changes.add(f"granted {role_client} roles {sorted(r['name'] for r in missing)} to "
                        f"{client_id}'s service account")
        surplus = have - set(role_names)
        if surplus:
            # Least privilege: nothing beyond what config/ grants stays on the account.
            admin.delete_client_roles_of_user(
                user["id"], role_client_uuid,
                [admin.get_client_role(role_client_uuid, name) for name in sorted(surplus)])
            changes.add(f"revoked {role_client} roles {sorted(surplus)} from {client_id}'s service account")


def _user_profile(admin: KeycloakAdmin, settings: Settings, changes: Changes) -> None:
    desired = load_template("user-profile.json", settings)
    actual = admin.get_realm_users_profile()
    merged = dict(actual)
    merged["unmanagedAttributePolicy"] = desired["unmanagedAttributePolicy"]
    attributes = {a["name"]: a for a in actual.get("attributes", [])}
    changed = []
    for attribute in desired["attributes"]:
        current = attributes.get(attribute["name"])
        if current is None or differs(attribute, current):
            # A null in config/ removes the key (e.g. "required": null for Keycloak's defaults).
            merged_attribute = {**(current or {}), **attribute}
            attributes[attribute["name"]] = {k: v for k, v in merged_attribute.items() if v is not None}
            changed.append(attribute["name"])
    if actual.get("unmanagedAttributePolicy") != desired["unmanagedAttributePolicy"]:
        changed.append("unmanagedAttributePolicy")
    if changed:
        merged["attributes"] = list(attributes.values())
        admin.update_realm_users_profile(merged)
        changes.add(f"updated user profile: {', '.join(changed)}")


BROWSER_FLOW = "browser-legacy"
BRIDGE_PROVIDER = "legacy-bridge-password-form"
OTP_FORM = "auth-otp-form"


def _browser_flow(admin: KeycloakAdmin, settings: Settings, changes: Changes) -> None:
    """The browser flow (the login page, and the admin console of support staff): the legacy bridge
    in place of the username/password form, then a one-time code from whoever must give one.

    cookie (alternative) | forms (alternative): legacy-bridge-password-form (required, configured
    with the bridge URL), then the conditional subflows of `_otp_subflows_of`, each ending in
    Keycloak's OTP form. The provider comes from keycloak_spi_bridge. A flow an earlier bootstrap
    made gets the steps it lacks; bound only once it is whole.
    """
    forms = f"{BROWSER_FLOW} forms"
    existed = any(f["alias"] == BROWSER_FLOW for f in admin.get_authentication_flows())
    if not existed:
        admin.create_authentication_flow({"alias": BROWSER_FLOW, "providerId": "basic-flow", "topLevel": True,
                                          "builtIn": False,
                                          "description": "Browser sign-in with legacy (Kii) passwords"})
        admin.create_authentication_flow_execution({"provider": "auth-cookie"}, BROWSER_FLOW)
        admin.create_authentication_flow_subflow({"alias": forms, "type": "basic-flow", "provider": "registration-page-form",
                                                  "description": "Username and password"}, BROWSER_FLOW)
        admin.create_authentication_flow_execution({"provider": BRIDGE_PROVIDER}, forms)
        changes.add(f"created authentication flow {BROWSER_FLOW}")
    executions = admin.get_authentication_flow_executions(BROWSER_FLOW)
    wanted = {"auth-cookie": "ALTERNATIVE", BRIDGE_PROVIDER: "REQUIRED"}
    for execution in executions:
        key = execution.get("providerId") or ("forms" if execution.get("displayName") == forms else None)
        requirement = wanted.get(key) or ("ALTERNATIVE" if execution.get("displayName") == forms else None)
        if requirement and execution.get("requirement") != requirement:
            admin.update_authentication_flow_executions({**execution, "requirement": requirement}, BROWSER_FLOW)
            changes.add(f"set {execution.get('displayName')} {requirement} in {BROWSER_FLOW}")
    _in_order(admin, BROWSER_FLOW, ["auth-cookie", forms], changes)
    bridge = next(e for e in admin.get_authentication_flow_executions(BROWSER_FLOW)
                  if e.get("providerId") == BRIDGE_PROVIDER)
    _execution_config(admin, settings, bridge, f"{BROWSER_FLOW}-bridge",
                      {"bridge.url": settings.bridge_url, "bridge.timeout.ms": "2500"},
                      f"the bridge of {BROWSER_FLOW}", changes)
    subflows = _otp_subflows_of(BROWSER_FLOW, settings)
    made = _otp_subflows(admin, settings, forms, subflows, changes)
    shape = [(0, "auth-cookie", "ALTERNATIVE"), (0, forms, "ALTERNATIVE"), (1, BRIDGE_PROVIDER, "REQUIRED"),
             *_otp_shape(subflows, 1)]
    if _flow_shape(admin, BROWSER_FLOW) != shape:
        raise RuntimeError(f"authentication flow {BROWSER_FLOW} has steps the bootstrap does not make, or lacks "
                           "some (is keycloak_spi_bridge installed?); compare it with the bootstrap's")
    if admin.get_realm(settings.realm).get("browserFlow") != BROWSER_FLOW:
        admin.update_realm(settings.realm, {"browserFlow": BROWSER_FLOW})
        changes.add(f"bound {BROWSER_FLOW} as the browser flow")
    if existed and made:
        _sign_out_support_staff(admin, settings, changes)


def _sign_out_support_staff(admin: KeycloakAdmin, settings: Settings, changes: Changes) -> None:
    """Sessions opened while the browser flow asked no one-time code would keep the console open
    without one: their owners sign in again."""
    name = load_template("support-group.json", settings)["name"]
    group = next((g for g in admin.get_groups({"search": name, "exact": True}) if g["name"] == name), None)
    members = admin.get_group_members(group["id"]) if group else []
    for member in members:
        admin.user_logout(member["id"])
    if members:
        changes.add(f"signed out the members of group {name}: their sessions were opened without a one-time code")


def _user_manager_role(settings: Settings) -> str:
    """The role whose holders (support staff, realm administrators) may manage users."""
    return f"realm-management.{load_template('support-group.json', settings)['oneTimeCodeRole']}"


def _otp_subflows_of(flow: str, settings: Settings) -> list[tuple[str, str, list[tuple[str, dict | None]]]]:
    """The one-time code steps of the login page's flows: (alias, description, [(provider, config)]),
    all required.

    Holders of the support group's oneTimeCodeRole (they can manage users) always meet the OTP form;
    one without an authenticator app is made to set one up (Keycloak's CONFIGURE_TOTP) before the
    sign-in ends. Everyone else meets it once they configured an app, as in the direct-grant flow.
    The role condition, negated in the second, keeps anyone from being asked twice.
    """
    role = _user_manager_role(settings)
    return [
        (f"{flow} OTP for user managers", "A one-time code; an authenticator app set up at the first sign-in",
         [("conditional-user-role", {"condUserRole": role, "negate": "false"}), (OTP_FORM, None)]),
        (f"{flow} conditional OTP", "A one-time code, for users who configured an authenticator app",
         [("conditional-user-role", {"condUserRole": role, "negate": "true"}),
          ("conditional-user-configured", None), (OTP_FORM, None)]),
    ]


def _direct_grant_subflows(settings: Settings) -> list[tuple[str, str, list[tuple[str, dict | None]]]]:
    """The direct-grant flow's steps after the password, in `_otp_subflows_of`'s form.

    Whoever may manage users gets no password grant at all: their way in is the console, where the
    login page asks their one-time code (a password grant could neither set up an authenticator app
    nor, through the service, ask for its code; and Keycloak's direct-grant OTP check fails with a
    server error for a user without one). Everyone else gives a code once they configured an app.
    """
    return [
        (f"{DIRECT_GRANT_FLOW} refused to user managers", "No password grants for those who may manage users",
         [("conditional-user-role", {"condUserRole": _user_manager_role(settings), "negate": "false"}),
          ("deny-access-authenticator", None)]),
        (f"{DIRECT_GRANT_FLOW} conditional OTP", "A one-time code, for users who configured an authenticator app",
         [("conditional-user-configured", None), (DIRECT_GRANT_OTP, None)]),
    ]


def _otp_shape(subflows, level: int) -> list[tuple[int, str, str]]:
    """What `_flow_shape` shows of the subflows, placed at `level`."""
    shape = []
    for alias, _, steps in subflows:
        shape += [(level, alias, "CONDITIONAL")] + [(level + 1, provider, "REQUIRED") for provider, _ in steps]
    return shape


def _otp_subflows(admin: KeycloakAdmin, settings: Settings, parent: str,
                  subflows: list[tuple[str, str, list[tuple[str, dict | None]]]], changes: Changes) -> bool:
    """The conditional subflows at the end of `parent`, in order, each with exactly its steps, all
    required. Any other set is made again whole (a missing OTP form would let the password alone in;
    remade one by one, they would change order). True when anything had to change: the code was not
    asked as it should have been."""
    def present() -> list[dict]:
        return [e for e in admin.get_authentication_flow_executions(parent)
                if e["level"] == 0 and e.get("authenticationFlow")]

    def steps_of(alias: str) -> list[str]:
        return [e.get("providerId") for e in admin.get_authentication_flow_executions(alias) if e["level"] == 0]

    have = present()
    before = len(changes.items)
    whole = [e.get("displayName") for e in have] == [alias for alias, _, _ in subflows] and all(
        steps_of(alias) == [provider for provider, _ in steps] for alias, _, steps in subflows)
    if have and not whole:
        for execution in have:
            admin.delete_authentication_flow_execution(execution["id"])
            changes.add(f"removed an incomplete {execution.get('displayName')} from {parent}")
        have = []
    if not have:
        for alias, description, steps in subflows:
            admin.create_authentication_flow_subflow({"alias": alias, "type": "basic-flow",
                                                      "provider": "registration-page-form",
                                                      "description": description}, parent)
            for provider, _ in steps:
                admin.create_authentication_flow_execution({"provider": provider}, alias)
            changes.add(f"created {alias} in {parent}")
        have = present()
    for subflow, (alias, _, steps) in zip(have, subflows):
        for execution, (_, config) in zip(admin.get_authentication_flow_executions(alias), steps):
            if execution.get("requirement") != "REQUIRED":
                admin.update_authentication_flow_executions({**execution, "requirement": "REQUIRED"}, alias)
                changes.add(f"set {execution.get('displayName')} REQUIRED in {alias}")
            if config is not None:
                _execution_config(admin, settings, execution, alias.replace(" ", "-"), config,
                                  f"the condition of {alias}", changes)
        # Conditional last: the subflow takes part only once its steps are in place.
        if subflow.get("requirement") != "CONDITIONAL":
            admin.update_authentication_flow_executions({**subflow, "requirement": "CONDITIONAL"}, parent)
            changes.add(f"set {alias} CONDITIONAL in {parent}")
    return len(changes.items) > before


def _execution_config(admin: KeycloakAdmin, settings: Settings, execution: dict, alias: str, desired: dict,
                      what: str, changes: Changes) -> None:
    if execution.get("authenticationConfig"):
        current = admin.get_authenticator_config(execution["authenticationConfig"])
        if current.get("config") != desired:
            admin.update_authenticator_config({**current, "config": desired}, execution["authenticationConfig"])
            changes.add(f"updated {what}")
        return
    response = admin.connection.raw_post(
        f"admin/realms/{settings.realm}/authentication/executions/{execution['id']}/config",
        data=json.dumps({"alias": alias, "config": desired}))
    if response.status_code >= 400:
        raise RuntimeError(f"{what}: HTTP {response.status_code}")
    changes.add(f"configured {what}")


def _in_order(admin: KeycloakAdmin, flow: str, names: list[str], changes: Changes) -> None:
    """The top steps of `flow` in the order of `names` (providers or subflow names), by their priorities.

    An update that leaves out an execution's priority sets it to 0 (earlier bootstraps did that):
    two alternatives of equal priority come back in whatever order the database gives.
    """
    top = {(e.get("providerId") or e.get("displayName")): e
           for e in admin.get_authentication_flow_executions(flow) if e["level"] == 0}
    for priority, name in enumerate(names):
        execution = top.get(name)
        if execution is not None and execution.get("priority") != priority:
            admin.update_authentication_flow_executions({**execution, "priority": priority}, flow)
            changes.add(f"ordered {execution.get('displayName')} in {flow}")


def _steps_flow(admin: KeycloakAdmin, settings: Settings, alias: str, binding: str, builtin: str, steps: list[str],
                description: str, changes: Changes) -> None:
    """A top-level flow that starts with `steps`, each required. One that lacks a step or has them out
    of order is unbound first (the realm falls back to Keycloak's `builtin` flow), then made again:
    a flow cut short, bound, could let a user in without the missing step."""
    flows = {f["alias"]: f for f in admin.get_authentication_flows()}
    if alias in flows and [step for level, step, _ in _flow_shape(admin, alias) if level == 0][:len(steps)] != steps:
        if admin.get_realm(settings.realm).get(binding) == alias:
            admin.update_realm(settings.realm, {binding: builtin})
        admin.delete_authentication_flow(flows.pop(alias)["id"])
        changes.add(f"removed an incomplete {alias}")
    if alias not in flows:
        admin.create_authentication_flow({"alias": alias, "providerId": "basic-flow", "topLevel": True,
                                          "builtIn": False, "description": description})
        for provider in steps:
            admin.create_authentication_flow_execution({"provider": provider}, alias)
        changes.add(f"created authentication flow {alias}")
    for execution in admin.get_authentication_flow_executions(alias):
        if execution["level"] == 0 and execution.get("providerId") in steps and \
                execution.get("requirement") != "REQUIRED":
            admin.update_authentication_flow_executions({**execution, "requirement": "REQUIRED"}, alias)
            changes.add(f"set {execution.get('displayName')} REQUIRED in {alias}")


def _bind(admin: KeycloakAdmin, settings: Settings, alias: str, binding: str, what: str, changes: Changes) -> None:
    previous = admin.get_realm(settings.realm).get(binding)
    if previous != alias:
        admin.update_realm(settings.realm, {binding: alias})
        changes.add(f"bound {alias} as the {what} (was {previous!r})")


def _flow_shape(admin: KeycloakAdmin, flow: str) -> list[tuple[int, str, str]]:
    """(level, provider or subflow name, requirement) of every step, in order."""
    return [(e["level"], e.get("providerId") or e.get("displayName"), e.get("requirement"))
            for e in admin.get_authentication_flow_executions(flow)]


RESET_FLOW = "reset-credentials-otp"
RESET_STEPS = ["reset-credentials-choose-user", "reset-credential-email", "reset-password"]


def _reset_credentials_flow(admin: KeycloakAdmin, settings: Settings, changes: Changes) -> None:
    """"Forgot password" at the login page: Keycloak's built-in flow with the browser flow's one-time
    code steps in place of its "Reset OTP", which takes a user's authenticator app away from whoever
    holds the emailed link and lets them sign in with a new one (support staff would reach the
    console with their mailbox alone).

    choose user | send the email | reset password | the subflows of `_otp_subflows_of`, all at the
    top. The new password is a required action, so it is set only after the code. A user who lost
    both the password and the app asks support (docs/support.md).
    """
    _steps_flow(admin, settings, RESET_FLOW, "resetCredentialsFlow", "reset credentials", RESET_STEPS,
                "Forgot password: the emailed link, then the one-time code", changes)
    subflows = _otp_subflows_of(RESET_FLOW, settings)
    _otp_subflows(admin, settings, RESET_FLOW, subflows, changes)
    if _flow_shape(admin, RESET_FLOW) != [(0, step, "REQUIRED") for step in RESET_STEPS] + _otp_shape(subflows, 0):
        raise RuntimeError(f"authentication flow {RESET_FLOW} has steps the bootstrap does not make, or lacks some; "
                           "compare it with the bootstrap's")
    _bind(admin, settings, RESET_FLOW, "resetCredentialsFlow", "reset credentials flow", changes)


DIRECT_GRANT_FLOW = "direct-grant-legacy"
DIRECT_GRANT_OTP = "legacy-direct-grant-otp"
TICKET_PROVIDER = "legacy-migration-ticket-or-password"


def _direct_grant_flow(admin: KeycloakAdmin, settings: Settings, changes: Changes) -> None:
    """Keycloak's direct-grant flow (the service's password sign-ins), with its password step able
    to take a first-login migration ticket instead (keycloak_spi_bridge, docs/sign-in.md).

    direct-grant-validate-username (required) | legacy-migration-ticket-or-password (required) |
    the subflows of `_direct_grant_subflows` (user managers refused; a one-time code from whoever
    configured an authenticator app). Bound only once it is whole: a flow cut short (a run stopped
    midway, the provider missing) could let a username alone in.
    """
    steps = ["direct-grant-validate-username", TICKET_PROVIDER]
    _steps_flow(admin, settings, DIRECT_GRANT_FLOW, "directGrantFlow", "direct grant", steps,
                "Password grants; a first login's migration ticket", changes)
    subflows = _direct_grant_subflows(settings)
    _otp_subflows(admin, settings, DIRECT_GRANT_FLOW, subflows, changes)
    if _flow_shape(admin, DIRECT_GRANT_FLOW) != [(0, step, "REQUIRED") for step in steps] + _otp_shape(subflows, 0):
        raise RuntimeError(f"authentication flow {DIRECT_GRANT_FLOW} is incomplete (is keycloak_spi_bridge "
                           "installed?); the direct grant flow was left as it was")
    _bind(admin, settings, DIRECT_GRANT_FLOW, "directGrantFlow", "direct grant flow", changes)
