//! Bindings of `plugboard:element@0.2.0` (`wit/element.wit`), the newest
//! contract version, whose types the runtime uses throughout.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "element-plugin",
    imports: {
        "plugboard:element/host.https-get": async,
        "plugboard:element/host.https-send": async,
    },
    exports: {
        default: async,
    },
});
