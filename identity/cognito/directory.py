"""ListUsers and the groups (AdminAddUserToGroup, AdminRemoveUserFromGroup, AdminListGroupsForUser,
ListUsersInGroup): the SigV4-signed listings. No Flask here.

Users are listed in username order by the provider's keyset pages (keycloak_spi_bridge UserPages),
so a PaginationToken is the last username of the page before: any depth costs what the first page
costs, and a user added or removed meanwhile moves no other user across a page. Groups are Keycloak's
top-level groups, which admins manage in the console; the tokens' `cognito:groups` lists them.
"""

from __future__ import annotations

from identity.cognito import errors
from identity.cognito.admin import AdminOperations, user_type
from identity.cognito.listing import offset, page_size, parse_filter, position, token
from identity.keycloak.gateway import KeycloakGateway


def shown(described: dict, names: list[str] | None) -> dict:
    """A UserType with only the attributes AttributesToGet names (all of them without it)."""
    if names is not None:
        wanted = set(names)
        described["Attributes"] = [a for a in described["Attributes"] if a["Name"] in wanted]
    return described


def group_type(group: dict, pool: str) -> dict:
    described = {"GroupName": group["name"], "UserPoolId": pool}
    if group.get("description"):
        described["Description"] = group["description"][:2048]
    precedence = ((group.get("attributes") or {}).get("precedence") or [None])[0]
    if precedence is not None and str(precedence).isdigit():
        described["Precedence"] = int(precedence)
    return described


class AdminDirectory:
    def __init__(self, keycloak: KeycloakGateway, users: AdminOperations):
        self.keycloak, self.users = keycloak, users

    def list_users(self, request: dict, client_ip=None) -> dict:
        self.users.check_pool(request)
        found = parse_filter(request.get("Filter"))
        return self._page(found.field, found.match, found.value, request, "PaginationToken")

    def list_users_in_group(self, request: dict, client_ip=None) -> dict:
        group = self._group(request)
        return self._page("group", "eq", group["id"], request, "NextToken")

    def _page(self, field, match, value, request: dict, token_name: str) -> dict:
        after = position(request.get(token_name)) or ""
        page, following = self.keycloak.user_page(field, match, value, after, page_size(request.get("Limit")))
        answer = {"Users": [shown(user_type(user, has_password), request.get("AttributesToGet"))
                            for user, has_password in page]}
        if following is not None:
            answer[token_name] = token(following)
        return answer

    def _group(self, request: dict) -> dict:
        self.users.check_pool(request)
        group = self.keycloak.group_named(request["GroupName"])
        if group is None:
            raise errors.ResourceNotFoundError("Group not found.")
        return group

    def admin_add_user_to_group(self, request: dict, client_ip=None) -> dict:
        group = self._group(request)
        user = self.users.user(request)
        self.keycloak.add_to_group(user["id"], group["id"])
        self.users.audit("admin_group_added", user, request, client_ip, group=group["name"])
        return {}

    def admin_remove_user_from_group(self, request: dict, client_ip=None) -> dict:
        group = self._group(request)
        user = self.users.user(request)
        self.keycloak.remove_from_group(user["id"], group["id"])
        self.users.audit("admin_group_removed", user, request, client_ip, group=group["name"])
        return {}

    def admin_list_groups_for_user(self, request: dict, client_ip=None) -> dict:
        user = self.users.user(request)
        first, size = offset(request.get("NextToken")), page_size(request.get("Limit"))
        groups = self.keycloak.user_groups(user["id"], first, size + 1)
        answer = {"Groups": [group_type(g, self.users.pool) for g in groups[:size]]}
        if len(groups) > size:
            answer["NextToken"] = token(str(first + size))
        return answer
