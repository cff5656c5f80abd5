"""Which kind of API key an endpoint takes, and typed access to the party behind it.

An API view declares the kind it serves, beside the shared authentication and throttle::

    class AdvanceQuoteApi(APIView):
        authentication_classes = [SignedApiKeyAuthentication]
        permission_classes = [IsMerchantKey]
        throttle_classes = [CredentialRateThrottle]

        def post(self, request: Request) -> Response:
            merchant = calling_merchant(request)  # the key's merchant; never from the request
            ...

The other kind of key gets 403 ``credential_scope``, before throttling and before the body is
parsed. ``calling_marketplace`` / ``calling_merchant`` refuse the same way, so a view that
forgot its permission class still cannot act for the wrong party.
"""

from __future__ import annotations

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from config.api.authentication import ApiPrincipal
from config.api.problems import ApiProblem
from merchants.models import Marketplace, Merchant


def _wrong_kind(wanted: str) -> ApiProblem:
    return ApiProblem(
        403,
        "credential_scope",
        "This API key is of the wrong kind for this endpoint.",
        f"This endpoint is for {wanted} keys.",
    )


def api_principal(request: Request) -> ApiPrincipal:
    """The party calling an endpoint that authenticates with SignedApiKeyAuthentication.

    :raises ApiProblem: 401 when the request was not authenticated by an API key.
    """
    principal = request.user
    if not isinstance(principal, ApiPrincipal):
        raise ApiProblem(401, "not_authenticated", "Authentication is required.")
    return principal


def calling_marketplace(request: Request) -> Marketplace:
    """The marketplace whose key signed ``request``.

    :raises ApiProblem: 403 credential_scope for a merchant key.
    """
    marketplace = api_principal(request).marketplace
    if marketplace is None:
        raise _wrong_kind("marketplace")
    return marketplace


def calling_merchant(request: Request) -> Merchant:
    """The merchant whose key signed ``request``: the only merchant the request may act for.

    :raises ApiProblem: 403 credential_scope for a marketplace key.
    """
    merchant = api_principal(request).merchant
    if merchant is None:
        raise _wrong_kind("merchant")
    return merchant


class _IsKeyOfKind(BasePermission):
    kind: str

    def has_permission(self, request: Request, view: APIView) -> bool:
        principal = request.user
        if not isinstance(principal, ApiPrincipal):
            return False  # DRF answers 401 when authentication is what is missing
        if principal.kind != self.kind:
            raise _wrong_kind(self.kind)
        return True


class IsMarketplaceKey(_IsKeyOfKind):
    """Only marketplace keys; a merchant key gets 403 credential_scope."""

    kind = "marketplace"


class IsMerchantKey(_IsKeyOfKind):
    """Only merchant keys, each acting for its one merchant; a marketplace key gets 403."""

    kind = "merchant"


class IsBankKey(_IsKeyOfKind):
    """Only the bank's own keys (statements in); a marketplace or merchant key gets 403."""

    kind = "bank"


class _AllKeysBut(BasePermission):
    refused: str  # the one kind of key the endpoint has nothing for
    wanted: str  # the kinds it serves, as the 403 names them

    def has_permission(self, request: Request, view: APIView) -> bool:
        principal = request.user
        if not isinstance(principal, ApiPrincipal):
            return False
        if principal.kind == self.refused:
            raise _wrong_kind(self.wanted)
        return True


class IsMarketplaceOrBankKey(_AllKeysBut):
    """A marketplace key or the bank's: each follows the jobs of the files it sent (reports,
    statements). A merchant key gets 403 credential_scope."""

    refused, wanted = "merchant", "marketplace or bank"


class IsAnyApiKey(_AllKeysBut):
    """A marketplace or a merchant key, declared on purpose: the view answers each party with its
    own data. A bank key has no data of a party here and gets 403."""

    refused, wanted = "bank", "marketplace or merchant"
