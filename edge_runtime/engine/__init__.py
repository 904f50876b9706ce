"""TensorRT engines: build (``build.py``: names, manifests, the checks made before TensorRT is imported), the
TensorRT build API with its version dispatch (``trt.py``), Protocols mirroring ``tensorrt-stubs`` for the objects
TensorRT hands out (``trt_api.py``), and CUDA buffers, page-locked host memory, events and graphs through
cuda-python or pycuda (``cuda.py``). The engine runner and the engine cache are the TensorRT backend,
:mod:`edge_runtime.backends.tensorrt`. Nothing here imports tensorrt or CUDA until a function that needs them is
called.
"""
