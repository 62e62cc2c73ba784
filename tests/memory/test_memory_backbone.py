"""Backbone access finds the same parts for GPT-2 and Llama-family models."""

from __future__ import annotations

import torch

from babilab.memory.common import activation, decoder_layers, final_norm, init_memory

from .memory_fixtures import build


def test_parts_of_each_family(backbone):
    layers, norm = decoder_layers(backbone), final_norm(backbone)
    assert len(layers) == backbone.config.num_hidden_layers == 2
    if backbone.config.model_type == "gpt2":
        assert layers is backbone.transformer.h and norm is backbone.transformer.ln_f
        assert activation(backbone)(torch.tensor([1.0])) < 1.0  # GELU
    else:
        assert layers is backbone.model.layers and norm is backbone.model.norm
        torch.testing.assert_close(activation(backbone)(torch.tensor([1.0])),
                                   torch.nn.functional.silu(torch.tensor([1.0])))
    ids = torch.arange(5)[None]
    hidden = backbone.base_model(ids).last_hidden_state
    # the body output is post-norm and the LM head applies to it directly
    torch.testing.assert_close(backbone.get_output_embeddings()(hidden), backbone(ids).logits)


def test_initial_memory_scale_and_placement(backbone):
    memory = init_memory(backbone, 1000)
    weight = backbone.get_input_embeddings().weight
    assert memory.shape == (1000, weight.shape[1]) and memory.device == weight.device
    assert abs(float(memory.detach().std()) / float(weight.detach().std()) - 1) < 0.1


def test_memory_parameters_are_the_only_saved_ones(arch, backbone):
    model = build(arch, backbone)
    keys = set(model.memory_state_dict())
    assert keys and not any(k.startswith("backbone.") for k in keys)
    n_backbone = len(backbone.state_dict())
    assert len(model.state_dict()) == n_backbone + len(keys)
