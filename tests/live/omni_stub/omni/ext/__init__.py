"""omni.ext: the extension interface Kit instantiates from [[python.module]]."""


class IExt:
    def on_startup(self, ext_id: str) -> None:
        pass

    def on_shutdown(self) -> None:
        pass
