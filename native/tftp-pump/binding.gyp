{
  "targets": [
    {
      "target_name": "tftp_pump",
      "sources": ["tftp_pump.c", "pump_loop.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
