"""The API Gateway v2 resource types ``squall deploy`` creates: HTTP APIs and their parts.

An ``AWS::ApiGatewayV2::Api`` with a ``Body`` (what SAM's ``AWS::Serverless::HttpApi`` and the
implicit ``ServerlessHttpApi`` become) is imported with ``ImportApi`` and updated with
``ReimportApi``, as CloudFormation does on AWS; one without is made with ``CreateApi`` (quick create
included). Routes, integrations, stages and authorizers are updated in place through their
``Update*`` operations. Squall's stages serve an API's current routes at once, so
``AWS::ApiGatewayV2::Deployment`` is accepted and makes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

from squall.templates.errors import TemplateError
from squall.templates.resources import Context, Deployed, ResourceType

_HTTP = "HTTP"


def _gone_ok(call: Callable[..., Any], **kwargs: Any) -> None:
    """Run a delete; a resource already gone (its API deleted before it, say) is not an error."""
    from botocore.exceptions import ClientError

    try:
        call(**kwargs)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NotFoundException":
            raise


def _pick(props: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    picked = {name: props[name] for name in names if name in props}
    if "DisableExecuteApiEndpoint" in picked:
        picked["DisableExecuteApiEndpoint"] = _flag(picked, "DisableExecuteApiEndpoint")
    return picked


def _changed(old: Deployed, props: Mapping[str, Any], names: tuple[str, ...]) -> bool:
    return any(old.properties.get(name) != props.get(name) for name in names)


def _flag(props: Mapping[str, Any], name: str) -> bool:
    """A boolean property, given as a boolean or (from a parameter) as text."""
    return str(props.get(name, False)).lower() == "true"


@contextmanager
def _naming(kind: ResourceType, logical: str, prop: str | None = None) -> Iterator[None]:
    """The server's refusal of a resource (of its ``prop``, when given) as an error naming it."""
    from botocore.exceptions import ClientError

    try:
        yield
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BadRequestException", "ConflictException", "NotFoundException"):
            raise
        where = f" property {prop}:" if prop else ""
        message = exc.response["Error"].get("Message", "")
        raise TemplateError(f"Resource {logical} ({kind.type_name}):{where} {message}") from exc


def _arn(ctx: Context, api_id: str, stage: str | None = None) -> str:
    """The ARN TagResource takes for an API or one of its stages."""
    return f"arn:aws:apigateway:{ctx.region}::/apis/{api_id}" + (f"/stages/{stage}" if stage is not None else "")


def _retag(ctx: Context, arn: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
    """Bring a resource's tags from ``old`` to ``new`` with UntagResource and TagResource."""
    apigw, old, new = ctx.client("apigatewayv2"), old or {}, new or {}
    gone = [key for key in old if key not in new]
    if gone:
        apigw.untag_resource(ResourceArn=arn, TagKeys=gone)
    changed = {key: str(value) for key, value in new.items() if old.get(key) != value}
    if changed:
        apigw.tag_resource(ResourceArn=arn, Tags=changed)


def _refuse(kind: ResourceType, logical: str, prop: str, why: str) -> TemplateError:
    return TemplateError(f"Resource {logical} ({kind.type_name}): Squall does not support the property {prop}: {why}")


class HttpApi(ResourceType):
    """AWS::ApiGatewayV2::Api for HTTP APIs: from an OpenAPI ``Body``, by quick create, or bare."""

    type_name = "AWS::ApiGatewayV2::Api"
    #: Changed in place with UpdateApi.
    _mutable = ("Name", "Description", "Version", "CorsConfiguration", "DisableExecuteApiEndpoint")
    #: A change of these makes a new API (they are CreateApi's only).
    _fixed = ("ProtocolType", "Target", "RouteKey")
    known = frozenset({*_mutable, *_fixed, "Tags", "Body", "BodyS3Location", "FailOnWarnings", "BasePath"})

    def check(self, logical: str, props: Mapping[str, Any]) -> None:
        super().check(logical, props)
        if "BodyS3Location" in props:
            raise _refuse(self, logical, "BodyS3Location", "definitions in S3 are not supported yet; give it as Body")
        if "Body" in props:
            if not isinstance(props["Body"], dict | str):
                raise TemplateError(f"Resource {logical} ({self.type_name}): Body must be an OpenAPI object")
            for prop in ("Target", "RouteKey", "Tags"):
                if prop in props:
                    raise _refuse(self, logical, prop, "with a Body, the definition says it (tags as tags)")
        elif props.get("ProtocolType") != _HTTP:
            raise _refuse(self, logical, "ProtocolType", f"{props.get('ProtocolType')!r}: Squall serves HTTP APIs only")
        if props.get("BasePath", "ignore") != "ignore":
            raise _refuse(self, logical, "BasePath", "Squall imports without base paths (ignore)")

    def create(self, logical: str, props: dict[str, Any], ctx: Context) -> Deployed:
        apigw = ctx.client("apigatewayv2")
        if "Body" in props:
            with _naming(self, logical, "Body"):
                api = apigw.import_api(Body=self._body(props), FailOnWarnings=_flag(props, "FailOnWarnings"))
            overrides = _pick(props, self._mutable)
            if overrides:
                with _naming(self, logical):
                    api = apigw.update_api(ApiId=api["ApiId"], **overrides)
        else:
            name = props.get("Name") or ctx.name_for(logical, 128)
            kwargs = _pick(props, (*self._mutable, "Target", "RouteKey", "Tags"))
            with _naming(self, logical):
                api = apigw.create_api(**{**kwargs, "Name": name, "ProtocolType": _HTTP})
        return self._deployed(api)

    def update(self, logical: str, old: Deployed, props: dict[str, Any], ctx: Context) -> Deployed:
        removed = [name for name in self._mutable if name in old.properties and name not in props]
        if _changed(old, props, self._fixed) or ("Body" in old.properties) != ("Body" in props) or removed:
            return super().update(logical, old, props, ctx)
        apigw = ctx.client("apigatewayv2")
        if "Body" in props:
            with _naming(self, logical, "Body"):
                fail = _flag(props, "FailOnWarnings")
                api = apigw.reimport_api(ApiId=old.physical_id, Body=self._body(props), FailOnWarnings=fail)
        overrides = _pick(props, self._mutable)
        if overrides or "Body" not in props:
            with _naming(self, logical):
                api = apigw.update_api(ApiId=old.physical_id, **overrides)
        if "Body" not in props:
            _retag(ctx, _arn(ctx, old.physical_id), old.properties.get("Tags"), props.get("Tags"))
        return self._deployed(api)

    def _body(self, props: Mapping[str, Any]) -> str:
        body = props["Body"]
        return body if isinstance(body, str) else json.dumps(body)

    def _deployed(self, api: Mapping[str, Any]) -> Deployed:
        api_id = str(api["ApiId"])
        attributes = {"ApiId": api_id, "ApiEndpoint": str(api["ApiEndpoint"])}
        return Deployed(type=self.type_name, physical_id=api_id, ref=api_id, attributes=attributes)

    def delete(self, old: Deployed, ctx: Context) -> None:
        _gone_ok(ctx.client("apigatewayv2").delete_api, ApiId=old.physical_id)


class _ApiChild(ResourceType):
    """A resource that belongs to one API (``ApiId``): made, changed in place, deleted by its id."""

    #: The store kind, as the boto3 operation names spell it (``route`` -> ``create_route``).
    kind: ClassVar[str]
    #: The member of the answer that holds the resource's id.
    id_member: ClassVar[str]
    #: Properties whose change makes a new resource (``ApiId`` always does).
    fixed: ClassVar[tuple[str, ...]] = ()
    #: What an Update call is given for a property the template no longer sets.
    cleared: ClassVar[dict[str, Any]] = {}
    #: Properties an Update call cannot clear: taking one away makes a new resource.
    sticky: ClassVar[tuple[str, ...]] = ()

    def create(self, logical: str, props: dict[str, Any], ctx: Context) -> Deployed:
        with _naming(self, logical):
            made = getattr(ctx.client("apigatewayv2"), f"create_{self.kind}")(**self.arguments(props))
        return self._deployed(made)

    def update(self, logical: str, old: Deployed, props: dict[str, Any], ctx: Context) -> Deployed:
        lost = [name for name in self.sticky if name in old.properties and name not in props]
        if _changed(old, props, ("ApiId", *self.fixed)) or lost:
            return super().update(logical, old, props, ctx)
        arguments = {**self.cleared, **self.arguments(props), self.id_member: old.physical_id}
        arguments.pop("Tags", None)  # Update* calls take no tags: TagResource changes them
        with _naming(self, logical):
            changed = getattr(ctx.client("apigatewayv2"), f"update_{self.kind}")(**arguments)
        return self._deployed(changed)

    def arguments(self, props: Mapping[str, Any]) -> dict[str, Any]:
        """The Create/Update call's arguments (boto3 names) for the resource's properties."""
        return dict(props)

    def _deployed(self, answer: Mapping[str, Any]) -> Deployed:
        item_id = str(answer[self.id_member])
        return Deployed(type=self.type_name, physical_id=item_id, ref=item_id, attributes={self.id_member: item_id})

    def delete(self, old: Deployed, ctx: Context) -> None:
        delete = getattr(ctx.client("apigatewayv2"), f"delete_{self.kind}")
        _gone_ok(delete, ApiId=old.properties["ApiId"], **{self.id_member: old.physical_id})


class Route(_ApiChild):
    """AWS::ApiGatewayV2::Route."""

    type_name = "AWS::ApiGatewayV2::Route"
    kind = "route"
    id_member = "RouteId"
    known = frozenset({"ApiId", "RouteKey", "Target", "AuthorizationType", "AuthorizerId", "AuthorizationScopes",
                       "OperationName", "ApiKeyRequired"})  # fmt: skip
    cleared = {"AuthorizationType": "NONE", "ApiKeyRequired": False}
    sticky = ("Target", "AuthorizationScopes", "OperationName")

    def check(self, logical: str, props: Mapping[str, Any]) -> None:
        super().check(logical, props)
        if _flag(props, "ApiKeyRequired"):
            raise _refuse(self, logical, "ApiKeyRequired", "HTTP APIs have no API keys")
        if props.get("AuthorizationType", "NONE") not in ("NONE", "JWT", "CUSTOM"):
            why = f"{props['AuthorizationType']!r}: Squall authorizes routes with NONE, JWT or CUSTOM"
            raise _refuse(self, logical, "AuthorizationType", why)

    def arguments(self, props: Mapping[str, Any]) -> dict[str, Any]:
        return {**props, "ApiKeyRequired": False} if "ApiKeyRequired" in props else dict(props)


class Integration(_ApiChild):
    """AWS::ApiGatewayV2::Integration: Lambda proxy (AWS_PROXY) integrations."""

    type_name = "AWS::ApiGatewayV2::Integration"
    kind = "integration"
    id_member = "IntegrationId"
    known = frozenset({"ApiId", "IntegrationType", "IntegrationUri", "PayloadFormatVersion", "TimeoutInMillis",
                       "Description", "IntegrationMethod", "ConnectionType"})  # fmt: skip
    sticky = ("Description",)

    def check(self, logical: str, props: Mapping[str, Any]) -> None:
        super().check(logical, props)
        if props.get("IntegrationType") != "AWS_PROXY":
            raise _refuse(self, logical, "IntegrationType", f"{props.get('IntegrationType')!r}: only AWS_PROXY")
        if props.get("ConnectionType", "INTERNET") != "INTERNET":
            raise _refuse(self, logical, "ConnectionType", "only INTERNET (no VPC links)")

    def arguments(self, props: Mapping[str, Any]) -> dict[str, Any]:
        arguments = dict(props)
        if "TimeoutInMillis" in arguments:
            arguments["TimeoutInMillis"] = int(arguments["TimeoutInMillis"])
        return arguments


class Stage(_ApiChild):
    """AWS::ApiGatewayV2::Stage; it serves the API's current routes (``DeploymentId`` changes nothing)."""

    type_name = "AWS::ApiGatewayV2::Stage"
    kind = "stage"
    id_member = "StageName"
    fixed = ("StageName",)
    known = frozenset({"ApiId", "StageName", "AutoDeploy", "StageVariables", "Description", "Tags", "DeploymentId"})
    cleared = {"StageVariables": {}, "AutoDeploy": False}
    sticky = ("Description",)

    def update(self, logical: str, old: Deployed, props: dict[str, Any], ctx: Context) -> Deployed:
        deployed = super().update(logical, old, props, ctx)
        arn = _arn(ctx, props["ApiId"], deployed.physical_id)
        _retag(ctx, arn, old.properties.get("Tags"), props.get("Tags"))
        return deployed

    def arguments(self, props: Mapping[str, Any]) -> dict[str, Any]:
        arguments = {key: value for key, value in props.items() if key != "DeploymentId"}
        if "AutoDeploy" in arguments:
            arguments["AutoDeploy"] = _flag(arguments, "AutoDeploy")
        return arguments


class Authorizer(_ApiChild):
    """AWS::ApiGatewayV2::Authorizer: JWT, or a Lambda REQUEST authorizer."""

    type_name = "AWS::ApiGatewayV2::Authorizer"
    kind = "authorizer"
    id_member = "AuthorizerId"
    known = frozenset({"ApiId", "AuthorizerType", "Name", "IdentitySource", "JwtConfiguration", "AuthorizerUri",
                       "AuthorizerPayloadFormatVersion", "EnableSimpleResponses", "AuthorizerResultTtlInSeconds",
                       "AuthorizerCredentialsArn"})  # fmt: skip
    fixed = ("AuthorizerType",)
    cleared = {"IdentitySource": [], "AuthorizerResultTtlInSeconds": 0, "EnableSimpleResponses": False}
    sticky = ("AuthorizerCredentialsArn", "AuthorizerPayloadFormatVersion")

    def arguments(self, props: Mapping[str, Any]) -> dict[str, Any]:
        arguments = dict(props)
        if "AuthorizerResultTtlInSeconds" in arguments:
            arguments["AuthorizerResultTtlInSeconds"] = int(arguments["AuthorizerResultTtlInSeconds"])
        if "EnableSimpleResponses" in arguments:
            arguments["EnableSimpleResponses"] = _flag(arguments, "EnableSimpleResponses")
        return arguments


class Deployment(ResourceType):
    """AWS::ApiGatewayV2::Deployment: accepted, and nothing is made. Squall's stages serve an API's
    current routes at once, so there is no deployment to create; the API must exist."""

    type_name = "AWS::ApiGatewayV2::Deployment"
    known = frozenset({"ApiId", "Description", "StageName"})

    def create(self, logical: str, props: dict[str, Any], ctx: Context) -> Deployed:
        apigw = ctx.client("apigatewayv2")
        with _naming(self, logical):
            apigw.get_api(ApiId=props["ApiId"])
            if "StageName" in props:
                apigw.get_stage(ApiId=props["ApiId"], StageName=props["StageName"])
        # Not a deployment id: a name for this template resource, which GetDeployment does not know.
        marker = f"{props['ApiId']}-auto"
        return Deployed(type=self.type_name, physical_id=marker, ref=marker, attributes={"DeploymentId": marker})

    def delete(self, old: Deployed, ctx: Context) -> None:
        """Nothing was made."""


#: The API Gateway v2 types; ``catalog.TYPES`` joins them with the others.
HTTP_TYPES: tuple[ResourceType, ...] = (HttpApi(), Route(), Integration(), Stage(), Authorizer(), Deployment())
