"""The real-time ASGI app: online features now, models and experiments on the same server.

Other layers add routes with a route factory, called once with the `ServerState`::

    def model_routes(state: ServerState) -> APIRouter:
        state.on_startup(load_models)                    # async hooks, run in order
        state.on_shutdown(unload_models)                 # run in reverse order
        state.add_readiness_check("models", models_loaded)   # /readyz fails while it fails
        router = APIRouter()
        # hot path: dispatched without the framework layer; access "read" or "write"
        router.routes.append(JsonRoute("/v1/models/{name}/predict", predict,
                                       request_model=PredictRequest))
        # management: the bearer token whenever one is configured
        router.add_api_route("/v1/models/{name}/aliases", set_alias, methods=["POST"],
                             dependencies=[state.requires("write")])
        return router

    app = create_app(project, routes=[model_routes])
"""

from shipyard.serving.app import DEFAULT_MAX_BODY_BYTES, RouteFactory, create_app
from shipyard.serving.asgi import ServerApp
from shipyard.serving.auth import Access, AccessKind
from shipyard.serving.routes import JsonCall, JsonResponse, JsonRoute
from shipyard.serving.state import Readiness, ServerState

__all__ = ["DEFAULT_MAX_BODY_BYTES", "Access", "AccessKind", "JsonCall", "JsonResponse",
           "JsonRoute", "Readiness", "RouteFactory", "ServerApp", "ServerState", "create_app"]
