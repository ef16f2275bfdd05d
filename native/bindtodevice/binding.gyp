{
  "targets": [
    {
      "target_name": "bindtodevice",
      "sources": ["bindtodevice.c"]
    }
  ]
}
