import XCTest
@testable import Quantize

final class QuantizePlaceholderTests: XCTestCase {}
