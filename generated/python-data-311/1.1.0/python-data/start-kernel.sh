#!/bin/sh
# Serve Jupyter kernels over HTTP on port 49999, as E2B's code interpreter does.
exec jupyter kernelgateway --KernelGatewayApp.ip=0.0.0.0 --KernelGatewayApp.port=49999 \
  --KernelGatewayApp.allow_origin='*'
