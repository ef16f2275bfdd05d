{
  "targets": [
    {
      "target_name": "tftp_pump",
      "sources": ["tftp_pump.c", "pump_loop.c", "../common/pump_base.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
