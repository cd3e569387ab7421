import XCTest
@testable import Formats

final class FormatsPlaceholderTests: XCTestCase {}
