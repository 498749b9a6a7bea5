"""Shared building blocks: the shared-input ResBlock equals the block on the concatenated input."""
import pytest
import torch

from model.modules import Decoder, ResBlock, like_format

pytestmark = pytest.mark.usefixtures("one_thread")


def test_shared_input_equals_the_block_on_the_concatenation():
    torch.manual_seed(0)
    block = ResBlock(24, 8)
    frames, objects = 2, 3
    per_object = torch.randn(frames * objects, 16, 5, 7)
    shared = torch.randn(frames, 8, 5, 7)
    concatenated = torch.cat([per_object, shared.repeat_interleave(objects, dim=0)], dim=1)
    torch.testing.assert_close(block(per_object, shared), block(concatenated), atol=1e-5, rtol=1e-5)


def test_shared_input_gradients_equal_those_of_the_concatenation():
    torch.manual_seed(1)
    block = ResBlock(12, 6)
    per_object = torch.randn(4, 8, 3, 3, requires_grad=True)
    shared = torch.randn(2, 4, 3, 3, requires_grad=True)
    block(per_object, shared).square().sum().backward()
    grads = [per_object.grad.clone(), shared.grad.clone(), block.conv1.weight.grad.clone()]
    for tensor in (per_object, shared, *block.parameters()):
        tensor.grad = None
    block(torch.cat([per_object, shared.repeat_interleave(2, dim=0)], dim=1)).square().sum().backward()
    for got, expected in zip(grads, [per_object.grad, shared.grad, block.conv1.weight.grad]):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_shared_input_needs_a_channel_changing_block():
    with pytest.raises(ValueError, match="shared input"):
        ResBlock(8)(torch.randn(2, 4, 3, 3), torch.randn(1, 4, 3, 3))


def test_decoder_follows_the_channels_last_format_of_its_skip_features():
    torch.manual_seed(2)
    decoder = Decoder(in_channels=1024).eval()
    x, shared = torch.randn(2, 512, 2, 3), torch.randn(1, 512, 2, 3)
    f8, f4 = torch.randn(1, 512, 4, 6), torch.randn(1, 256, 8, 12)
    seen = []
    decoder.up_8_4.out_conv.conv1.register_forward_pre_hook(
        lambda module, inputs: seen.append(inputs[0].is_contiguous(memory_format=torch.channels_last)))
    with torch.no_grad():
        expected = decoder(x, f8, f4, shared=shared)
        cl = [t.contiguous(memory_format=torch.channels_last) for t in (f8, f4)]
        got = decoder(x, *cl, shared=shared)
    assert seen == [False, True]
    assert got.shape == (2, 1, 32, 48)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert like_format(x, x) is x
