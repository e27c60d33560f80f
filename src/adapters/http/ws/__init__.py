"""Real-time delivery over WebSockets, in the seams of the protocol: the frames
(:mod:`.frames`), the codes and which domain error is which (:mod:`.codes`), the fan-out
hub and its connections (:mod:`.hub`), the endpoint (:mod:`.endpoint`) and its settings
(:mod:`.config`). Like the HTTP side, the protocol is tables: the OpenAPI document's
``x-websocket`` is generated from the frame classes and the code tables."""
